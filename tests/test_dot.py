"""The pruned exact top-k of dot-product scores (segue.models._dot) against the dense block it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from segue.models._common import ScaledBlend, scale_rows
from segue.models._dot import NormOrder, RowBlend, pruned_top_k, suffix_max
from segue.models.base import top_k

N_SONGS, DIM = 20_000, 8


def catalogue(seed: int, bias: bool):
    """Song vectors with heavy-tailed lengths (as trained ones have), popularity that follows them."""
    rng = np.random.default_rng(seed)
    length = rng.lognormal(0.0, 1.2, N_SONGS)
    vectors = (rng.standard_normal((N_SONGS, DIM)) * length[:, None]).astype(np.float32)
    song_bias = (0.3 * np.log(length) + rng.normal(0, 0.1, N_SONGS)).astype(np.float32) if bias else None
    popularity = (length / length.max()).astype(np.float32)
    return vectors, song_bias, popularity


def title_blend(rng, rows: int, popularity: np.ndarray, never: np.ndarray) -> ScaledBlend:
    """A blend shaped like the title model's: a sparse part per row over popular and tail songs alike."""
    part = sp.random(rows, N_SONGS, density=0.01, format="csr", dtype=np.float32, random_state=rng)
    part.data *= 3
    coef = rng.uniform(0.0, 1.0, rows).astype(np.float32)
    values = part.data + coef[np.repeat(np.arange(rows), np.diff(part.indptr))] * popularity[part.indices]
    values[never[part.indices]] = -np.inf
    dense = part.toarray() + coef[:, None] * popularity[None, :]
    dense[:, never] = -np.inf
    best = np.max(dense, axis=1, where=np.isfinite(dense), initial=0.0).astype(np.float32)
    best[best <= 0] = 1.0
    factor = rng.uniform(0.05, 1.0, rows).astype(np.float32)
    return ScaledBlend(part, values.astype(np.float32), coef, best, factor, popularity, never)


def dense_top_k(vectors, song_bias, queries, k, seed_ptr, seed_idx, never, scale, blend_rows, blend):
    """What a model's dense path computes: every score, scaled, blended, masked, then top_k."""
    scores = queries @ vectors.T
    if song_bias is not None:
        scores += song_bias
    if scale:
        scores = scale_rows(scores)
    if blend is not None:
        rows = np.repeat(np.arange(len(blend_rows)), np.diff(blend.part.indptr))
        on_support = blend.support_added(rows, np.arange(blend.part.nnz),
                                         scores[blend_rows[rows], blend.part.indices])
        scores[blend_rows] = blend.background_added(np.arange(len(blend_rows)), np.arange(N_SONGS),
                                                    scores[blend_rows])
        scores[blend_rows[rows], blend.part.indices] = on_support
    if never is not None:
        scores[:, never] = -np.inf
    scores[np.repeat(np.arange(len(queries)), np.diff(seed_ptr)), seed_idx] = -np.inf
    return top_k(scores, k)


@pytest.mark.parametrize("bias, scale, blended, masked", [
    (False, False, False, False), (True, False, False, True), (False, True, False, True), (False, True, True, True),
    (False, True, True, False),
])
def test_pruned_top_k_equals_the_dense_top_k_where_it_answers(bias, scale, blended, masked):
    rng = np.random.default_rng(3)
    vectors, song_bias, popularity = catalogue(0, bias)
    norm_order = NormOrder.build(vectors, song_bias, first=512, share=0.25)
    queries = rng.standard_normal((40, DIM)).astype(np.float32)
    queries[:5] *= 1e-3  # short queries: every song's bound is small, the relative order is what matters
    lengths = rng.integers(0, 6, 40)
    seed_ptr = np.concatenate([[0], np.cumsum(lengths)])
    seed_idx = norm_order.order[rng.integers(0, 200, lengths.sum())].astype(np.int32)  # seeds among the best
    never = rng.random(N_SONGS) < 0.02 if masked else None
    blend_rows = np.arange(0, 40, 2)
    blend = title_blend(rng, len(blend_rows), popularity, never if masked else np.zeros(N_SONGS, bool)) \
        if blended else None
    row_blend = RowBlend(blend, blend_rows, norm_order.past(popularity)) if blended else None
    for k in (1, 20, 300):
        ids, scores, exact = pruned_top_k(norm_order, queries, k, seed_ptr, seed_idx, True, never=never,
                                          scale=scale, blend=row_blend)
        want_ids, want_scores = dense_top_k(vectors, song_bias, queries, k, seed_ptr, seed_idx, never, scale,
                                            blend_rows, blend)
        assert exact.mean() >= 0.5, f"k={k}: only {exact.sum()} of 40 rows answered"
        np.testing.assert_array_equal(ids[exact], want_ids[exact])
        np.testing.assert_allclose(scores[exact], want_scores[exact], rtol=1e-5, atol=1e-6)
        assert (ids[~exact] == -1).all()


def test_seeds_are_kept_with_exclude_seeds_false():
    vectors, _, _ = catalogue(1, False)
    norm_order = NormOrder.build(vectors, first=512, share=0.25)
    query = vectors[norm_order.order[:1]] * 5  # its own best song first
    seeds = norm_order.order[:1].astype(np.int32)
    ids, _, exact = pruned_top_k(norm_order, query, 10, np.array([0, 1]), seeds, False)
    assert exact[0] and ids[0, 0] == seeds[0]
    ids, _, exact = pruned_top_k(norm_order, query, 10, np.array([0, 1]), seeds, True)
    assert exact[0] and seeds[0] not in ids[0]


def test_small_catalogues_get_no_levels_and_levels_double_to_the_share():
    assert NormOrder.build(np.ones((1000, 4), np.float32)) is None
    norm_order = NormOrder.build(np.ones((10_000, 4), np.float32), first=500, share=0.5)
    assert norm_order.levels == (500, 1000, 2000, 5000)  # doubling, no level just short of the last
    np.testing.assert_array_equal(norm_order.order, np.arange(10_000))  # equal lengths: by id


def test_a_playlist_no_level_can_answer_goes_dense_after_the_first_level(monkeypatch):
    """Vectors of equal length: every song past the head keeps the best bound, so once the head's k-th score
    (from enough songs) falls short, no level can answer and the playlist is left to the dense path at once
    instead of scoring half the catalogue first; with too few songs behind the k-th score, the next level is
    tried until there are enough."""
    import segue.models._dot as dot

    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((4096, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    norm_order = NormOrder.build(vectors, first=256, share=0.5)
    assert len(norm_order.levels) == 4
    blocks = []
    monkeypatch.setattr(dot, "top_k", lambda block, k: blocks.append(block.shape[1]) or top_k(block, k))
    query = rng.standard_normal((1, DIM)).astype(np.float32)
    no_seeds = np.array([0, 0]), np.zeros(0, np.int32)
    _, _, exact = pruned_top_k(norm_order, query, 8, *no_seeds, True)  # 256 >= RELIABLE_KTH * 8 songs
    assert not exact[0] and blocks == [256]
    blocks.clear()
    _, _, exact = pruned_top_k(norm_order, query, 64, *no_seeds, True)  # RELIABLE_KTH * 64 = 512 songs
    assert not exact[0] and blocks == [256, 512]


def test_support_songs_past_the_head_are_skipped_when_a_nearer_level_takes_the_row(monkeypatch):
    """A title-like blend's support songs past the head cost one product each. A level scores them only for a
    row it answers or would send to the last level or dense; a row it passes on to a nearer level (whose head
    scores more of them anyway) skips them. Every answer stays the dense one."""
    import segue.models._dot as dot

    rng = np.random.default_rng(6)
    vectors, _, popularity = catalogue(2, False)
    norm_order = NormOrder.build(vectors, first=512, share=0.5)
    levels = norm_order.levels
    events = []
    real_products, real_top_k = dot._row_products, dot.top_k
    monkeypatch.setattr(dot, "_row_products", lambda q, v, rows, songs: events.append("products")
                        or real_products(q, v, rows, songs))
    monkeypatch.setattr(dot, "top_k", lambda block, k: events.append(block.shape[1]) or real_top_k(block, k))
    no_seeds = np.array([0, 0]), np.zeros(0, np.int32)
    skipped = 0
    for _ in range(40):
        blend = title_blend(rng, 1, popularity, np.zeros(N_SONGS, bool))
        row_blend = RowBlend(blend, np.array([0]), norm_order.past(popularity))
        query = rng.standard_normal((1, DIM)).astype(np.float32)
        events.clear()
        ids, _, exact = pruned_top_k(norm_order, query, 100, *no_seeds, True, scale=True, blend=row_blend)
        if exact[0]:
            want_ids, _ = dense_top_k(vectors, None, query, 100, *no_seeds, None, True, np.array([0]), blend)
            assert ids[0].tolist() == want_ids[0].tolist()
        for here, after in zip(events, events[1:]):
            if here != "products" and after != "products":  # a level passed the row on without its products
                assert after != levels[-1]  # ... only to a nearer level
                skipped += 1
    assert skipped > 0


def test_suffix_max():
    values = np.array([3.0, 1.0, 2.0, 0.5])
    np.testing.assert_array_equal(suffix_max(values, np.array([0, 1, 2, 3, 4])), [3.0, 2.0, 2.0, 0.5, -np.inf])
