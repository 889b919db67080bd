"""Exact top-k of dot-product scores that scores only the head of a large catalogue.

Embedding models (``als``, the neural ones) score a song ``q · v + bias``. By Cauchy-Schwarz ``q · v <=
|q| |v|``, so with the songs ordered by the length of their vectors (longest first), every song past the
first ``m`` scores at most ``|q| · |v|_(m) + (largest bias past m)``. The first ``m`` songs are scored; when a
playlist's k-th best score among them beats that bound, no other song can reach its top k (nor tie with the
k-th), and the answer is the dense one. Otherwise ``m`` doubles (only the added songs are scored), up to a
share of the catalogue past which the caller scores the playlist densely.

Why this pays: trained song vectors are long for popular songs and short for the long tail (regularisation
shrinks what little data supports), and the more songs a catalogue has, the larger its tail. On the
generated 1M-playlist MPD (2.07M songs, ALS with 128 factors) every k=500 answer of the challenge playlists
lies within the first 65k songs by length, 3 % of the catalogue (``benchmarks/pruned_top_k.py``).

Title blending (``als`` adds the title model's row-scaled scores, see :class:`ScaledBlend`) is bounded the
same way: the blend's sparse support is scored exactly wherever it lies, and its popularity background off
the support is at most its value at the most popular song past the head.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from segue.models._common import ScaledBlend, seed_rows
from segue.models.base import take_rows, top_k

# Songs scored at the first level: this share of the catalogue (at least MIN_FIRST_LEVEL); each further
# level doubles it, up to HEAD_SHARE. The generated 1M-playlist MPD (2.07M songs) answers k=500 within its
# first level (1/32: 65k songs); smaller catalogues have flatter lengths and need a larger share: at 280k songs
# most als answers take a quarter, some more, so the last level reaches half (a playlist no level can answer
# goes dense at once; benchmarks/pruned_top_k.py prints how far answers reach). Below MIN_CATALOGUE songs the
# levels do not pay.
FIRST_SHARE = 1 / 32
MIN_FIRST_LEVEL = 1 << 12
HEAD_SHARE = 1 / 2
MIN_CATALOGUE = 1 << 15
# a k-th score among at least this many times k songs predicts the level that answers a playlist; from fewer
# songs (small first levels, large k) the levels are walked one by one
RELIABLE_KTH = 8
# float32 dot products and sums may exceed the exact bound by rounding (relative error ~1e-5 for 128 terms):
# bounds are loosened by this share of their size (and of 1e-3) before a comparison
ROUNDING_MARGIN = 1e-4


@dataclasses.dataclass(frozen=True, eq=False)
class NormOrder:
    """Songs ordered by vector length, the head's vectors gathered in that order, and the bounds past each
    level. Build it once per fitted model (:meth:`build`); the full vectors are referenced, not copied."""

    vectors: np.ndarray  # (n, f) float32, every song
    bias: np.ndarray | None  # (n,) float32
    norms: np.ndarray  # (n,) float64 vector lengths
    order: np.ndarray  # (n,) int64 song ids, longest vector first (ties by id)
    levels: tuple[int, ...]  # how many head songs each level scores
    head: np.ndarray  # (levels[-1], f) float32: vectors[order[:levels[-1]]]
    head_bias: np.ndarray | None  # (levels[-1],) their biases
    norm_past: np.ndarray  # (len(levels),) float64: the longest vector past each level
    bias_past: np.ndarray  # (len(levels),) float64: the largest bias past each level (0 without biases)
    # per level: the head's song ids ascending, the permutation of the head that gives them, and each song's
    # position among them ((n,) int32, -1 past the head: a lookup instead of a search)
    head_ids: list[tuple[np.ndarray, np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, vectors: np.ndarray, bias: np.ndarray | None = None, first: int | None = None,
              share: float | None = None) -> "NormOrder | None":
        """Levels from ``first`` songs (default: FIRST_SHARE of them, at least MIN_FIRST_LEVEL) to ``share`` of
        the catalogue; None when that leaves fewer than two levels, or (with the defaults) for a catalogue under
        MIN_CATALOGUE songs: dense is as cheap."""
        n = len(vectors)
        if first is None and share is None and n < MIN_CATALOGUE:
            return None
        limit = min(int(n * (HEAD_SHARE if share is None else share)), n - 1)  # a song past the head bounds it
        first = max(MIN_FIRST_LEVEL, int(n * FIRST_SHARE)) if first is None else first
        if limit < 2 * first:
            return None
        norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
        order = np.lexsort((np.arange(n), -norms))
        levels = [first]
        while 2 * levels[-1] < limit:
            levels.append(2 * levels[-1])
        levels[-1] = limit if limit < 1.5 * levels[-1] else levels[-1]  # no level just short of the last
        levels += [limit] if levels[-1] < limit else []
        ends = np.array(levels)
        head = np.ascontiguousarray(vectors[order[:limit]], dtype=np.float32)
        if bias is None:
            head_bias, bias_past = None, np.zeros(len(levels))
        else:
            head_bias = np.ascontiguousarray(bias[order[:limit]], dtype=np.float32)
            bias_past = suffix_max(bias[order].astype(np.float64), ends)
        return cls(vectors, bias, norms, order, tuple(levels), head, head_bias, norms[order[ends]], bias_past,
                   [_by_id(order, m) for m in levels])

    def past(self, values: np.ndarray) -> np.ndarray:
        """(len(levels),) the largest of ``values`` (n,) over the songs past each level."""
        return suffix_max(np.asarray(values, dtype=np.float64)[self.order], np.array(self.levels))


def _by_id(order: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.argsort(order[:m], kind="stable")
    ids = order[:m][perm]
    position = np.full(len(order), -1, dtype=np.int32)
    position[ids] = np.arange(m, dtype=np.int32)
    return ids, perm, position


def suffix_max(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``values[e:].max()`` for each ``e`` of ``ends`` (-inf when ``e`` is past the end)."""
    tail = np.maximum.accumulate(values[::-1])[::-1]
    return np.where(ends < len(values), tail[np.minimum(ends, len(values) - 1)], -np.inf)


@dataclasses.dataclass(frozen=True)
class RowBlend:
    """A :class:`ScaledBlend` added to some rows of a block: ``rows`` (ascending) are its rows in order, and
    ``weight_past`` its background weight's largest value past each level (:meth:`NormOrder.past`)."""

    blend: ScaledBlend
    rows: np.ndarray
    weight_past: np.ndarray


def pruned_top_k(norm_order: NormOrder, queries: np.ndarray, k: int, seed_ptr: np.ndarray, seed_idx: np.ndarray,
                 exclude_seeds: bool, never: np.ndarray | None = None, scale: bool = False,
                 blend: RowBlend | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise top-k of ``queries @ vectors.T + bias`` as :func:`~segue.models.base.top_k` ranks the dense
    block: ``(ids, scores, exact)``; rows with ``exact`` False must be scored densely instead.

    ``never`` (n,) bool: songs that score -inf. ``scale``: each row is first divided by its largest score, as
    ``scale_rows`` does (rows whose best is not positive are left alone). ``blend``: added to its rows after
    that. With ``exclude_seeds`` each row's seeds (CSR ``seed_ptr``/``seed_idx``) score -inf.
    """
    b = len(queries)
    ids = np.full((b, k), -1, dtype=np.int32)
    out = np.full((b, k), -np.inf, dtype=np.float32)
    exact = np.zeros(b, dtype=bool)
    q_norm = np.sqrt(np.einsum("ij,ij->i", queries, queries, dtype=np.float64))
    slot = np.full(b, -1, dtype=np.int64)
    if blend is not None:
        slot[blend.rows] = np.arange(len(blend.rows))
    pending = np.arange(b)
    raw = np.zeros((b, 0), dtype=np.float32)  # the pending rows' products with the head so far, head order
    target = np.zeros(b, dtype=np.int64)  # the first level that may answer each row, as far as is known
    levels = norm_order.levels
    for level, m in enumerate(levels):
        if len(pending) == 0:
            break
        if level < target[pending].min():
            continue  # no pending row can be answered here: the next level scores these songs too
        new = queries[pending] @ norm_order.head[raw.shape[1] : m].T  # only the songs not scored yet
        if norm_order.head_bias is not None:
            new += norm_order.head_bias[raw.shape[1] : m]
        raw = np.concatenate([raw, new], axis=1)  # (p, m)
        head_ids, perm, position = norm_order.head_ids[level]
        # per row and level: the most a song past that level's head can score (raw, and as ranked)
        raw_bound = q_norm[pending, None] * norm_order.norm_past + norm_order.bias_past
        divisor = np.ones(len(pending), np.float32)
        block = raw[:, perm]  # id order: top_k's ties by position are ties by id
        if scale:
            top = raw.max(axis=1)
            divisor = np.where(top > 0, top, 1).astype(np.float32)
            block /= divisor[:, None]
        bound = raw_bound / divisor[:, None]
        if never is not None:
            block[:, never[head_ids]] = -np.inf
        seeds = seed_keys(seed_ptr, seed_idx, pending) if exclude_seeds else None
        if seeds is not None:
            _exclude_seeds(block, position, seeds)
        outside = None
        if blend is not None:
            bound += _blend_bounds(blend, slot[pending])
            outside = _add_blend(blend, slot[pending], block, head_ids, position, norm_order, q_norm[pending],
                                 divisor)
        found, scores = top_k(block, k)
        row_ids = head_ids.astype(np.int32)[np.maximum(found, 0)]
        if outside is not None and len(outside.rows):  # support songs past the head that may still matter
            # scored where they decide something: in rows this level answers with the head's k-th score alone
            # (they only raise it: the rows stay answered), and in rows it would send to the last level or the
            # dense path, where they may bring a nearer level within reach; the other rows go on to a nearer
            # level, whose head scores more of these songs anyway
            head_reach = _reach(scores[:, k - 1], bound, raw_bound, top if scale else None)
            passed_on = ~head_reach[:, level] & head_reach[:, level + 1 : -1].any(axis=1)
            outside = outside.take(~passed_on[outside.rows])
            row_ids, scores = _widen(blend, slot[pending], outside, row_ids, scores, norm_order, queries[pending],
                                     divisor, never, seeds)
        row_ids = np.where(np.isfinite(scores), row_ids, -1)
        kth = scores[:, k - 1]
        # the next level tried is the first that the k-th score found so far would answer (it only rises as
        # songs join, so an earlier one might have done: a cost, never an error)
        answers = _reach(kth, bound, raw_bound, top if scale else None)
        ok = answers[:, level]
        done = pending[ok]
        ids[done], out[done], exact[done] = row_ids[ok], scores[ok], True
        later = answers & (np.arange(len(levels)) > level)
        # none: the row goes dense now (the k-th score would have to rise past every remaining level's bound,
        # and scoring up to half the catalogue before the dense row costs more than the dense row alone) --
        # unless the k-th score comes from too few songs to go by: then the next level is tried
        target[pending] = np.where(later.any(axis=1), later.argmax(axis=1),
                                   len(levels) if raw.shape[1] >= RELIABLE_KTH * k else level + 1)
        target[pending[~np.isfinite(kth)]] = level + 1  # fewer than k songs scored yet: no k-th score to go by
        keep = ~ok & (target[pending] < len(levels))
        pending, raw = pending[keep], raw[keep]
    return ids, out, exact


def _reach(kth: np.ndarray, bound: np.ndarray, raw_bound: np.ndarray, top: np.ndarray | None) -> np.ndarray:
    """(rows, levels): which levels answer each row with k-th score ``kth``: its k-th score beats every song past
    the level's head and, for scaled rows (``top``: their best raw score), its best score is in the head (the
    dense path divides by it)."""
    answers = np.isfinite(kth)[:, None] & (_loosened(bound) < kth[:, None])
    if top is not None:
        answers &= top[:, None] > _loosened(raw_bound)
    return answers


def _blend_bounds(blend: RowBlend, slots: np.ndarray) -> np.ndarray:
    """(rows, levels) the most the blend adds to a song past each level's head and off its support (0 for
    rows without the blend)."""
    added = np.zeros((len(slots), len(blend.weight_past)))
    rows = np.flatnonzero(slots >= 0)
    for level, weight in enumerate(blend.weight_past):
        added[rows, level] = blend.blend.background_bound(slots[rows], weight)
    return added


def _loosened(bound: np.ndarray) -> np.ndarray:
    """``bound`` raised by the rounding margin (infinite bounds stay as they are)."""
    return bound + ROUNDING_MARGIN * (np.abs(np.nan_to_num(bound, posinf=0.0, neginf=0.0)) + 1e-3)


def _exclude_seeds(block: np.ndarray, position: np.ndarray, seeds: np.ndarray) -> None:
    """Seeds (:func:`seed_keys`) to -inf in a head block (``position``: each song's column, -1 for none)."""
    row, pos = seeds >> 32, position[seeds & 0xFFFFFFFF]
    block[row[pos >= 0], pos[pos >= 0]] = -np.inf


@dataclasses.dataclass(frozen=True)
class _Outside:
    """Support entries of a blend past the head: block row, song, blend entry, and an upper bound of the
    final score (the product bounded by the song's own vector length)."""

    rows: np.ndarray
    cols: np.ndarray
    entries: np.ndarray
    upper: np.ndarray

    def take(self, keep: np.ndarray) -> "_Outside":
        return _Outside(self.rows[keep], self.cols[keep], self.entries[keep], self.upper[keep])


def _add_blend(blend: RowBlend, slots: np.ndarray, block: np.ndarray, head_ids: np.ndarray, position: np.ndarray,
               norm_order: NormOrder, q_norm: np.ndarray, divisor: np.ndarray) -> _Outside | None:
    """Add the blend to its rows of the head block in place (``slots``: each block row's blend row, -1 for
    none). Returns its support entries past the head, which the caller must score where they can still
    matter."""
    sb = blend.blend
    rows = np.flatnonzero(slots >= 0)
    if len(rows) == 0:
        return None
    b_rows = slots[rows]
    entry_ptr, entries, _ = take_rows(sb.part.indptr, np.arange(sb.part.nnz), None, b_rows)
    entry_row = rows[seed_rows(entry_ptr)]  # block row of each support entry
    cols = sb.part.indices[entries]
    pos = position[cols]
    inside = pos >= 0
    on_support = sb.support_added(slots[entry_row[inside]], entries[inside], block[entry_row[inside], pos[inside]])
    block[rows] = sb.background_added(b_rows, head_ids, block[rows])
    block[entry_row[inside], pos[inside]] = on_support
    out_rows, out_entries = entry_row[~inside], entries[~inside]
    out_cols = sb.part.indices[out_entries]
    raw_upper = q_norm[out_rows] * norm_order.norms[out_cols]
    if norm_order.bias is not None:
        raw_upper += norm_order.bias[out_cols]
    upper = sb.support_bound(slots[out_rows], out_entries, raw_upper / divisor[out_rows])
    return _Outside(out_rows, out_cols, out_entries, upper)


def _widen(blend: RowBlend, slots: np.ndarray, outside: _Outside, row_ids: np.ndarray, scores: np.ndarray,
           norm_order: NormOrder, queries: np.ndarray, divisor: np.ndarray, never: np.ndarray | None,
           seeds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The head's top k merged with the support songs past the head whose bound reaches the head's k-th score
    (no other can enter: the k-th score only rises as songs join). The merge is exact, ties included: a head
    song outside the head's top k ranks after its k-th, which ranks no better than the merged k-th.
    ``seeds``: sorted ``block row << 32 | song`` keys of the seeds to exclude, or None."""
    k = scores.shape[1]
    need = np.flatnonzero(~(_loosened(outside.upper) < scores[outside.rows, k - 1]))
    if len(need) == 0:
        return row_ids, scores
    r, c = outside.rows[need], outside.cols[need]
    raw = _row_products(queries, norm_order.vectors, r, c)
    if norm_order.bias is not None:
        raw += norm_order.bias[c]
    base = raw.astype(np.float32) / divisor[r]
    if never is not None:
        base[never[c]] = -np.inf
    if seeds is not None and len(seeds):
        keys = r.astype(np.int64) << 32 | c
        base[seeds[np.minimum(np.searchsorted(seeds, keys), len(seeds) - 1)] == keys] = -np.inf
    values = blend.blend.support_added(slots[r], outside.entries[need], base)
    count = np.bincount(r, minlength=len(scores))  # r ascending: entries of a row are contiguous
    at = np.arange(len(r)) - np.repeat(np.cumsum(count) - count, count)
    extra = np.full((len(scores), int(count.max())), -np.inf, dtype=np.float32)
    extra_ids = np.full(extra.shape, -1, dtype=row_ids.dtype)
    extra[r, at], extra_ids[r, at] = values, c
    pool, pool_ids = np.concatenate([scores, extra], axis=1), np.concatenate([row_ids, extra_ids], axis=1)
    pool_ids[np.isneginf(pool)] = np.iinfo(pool_ids.dtype).max  # -inf entries last (they come back as -1)
    order = np.lexsort((pool_ids, -pool), axis=1)[:, :k]
    return np.take_along_axis(pool_ids, order, axis=1), np.take_along_axis(pool, order, axis=1)


def _row_products(queries: np.ndarray, vectors: np.ndarray, rows: np.ndarray, songs: np.ndarray) -> np.ndarray:
    """``queries[rows[i]] . vectors[songs[i]]`` for every i, ``rows`` ascending: one matrix-vector product per
    block row (a block holds few rows; an element-wise einsum over the gathered pairs was 3x slower)."""
    out = np.empty(len(rows), dtype=np.float32)
    ends = np.flatnonzero(np.diff(rows)) + 1
    for lo, hi in zip(np.concatenate([[0], ends]).tolist(), np.concatenate([ends, [len(rows)]]).tolist()):
        out[lo:hi] = vectors[songs[lo:hi]] @ queries[rows[lo]]
    return out


def seed_keys(seed_ptr: np.ndarray, seed_idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sorted ``i << 32 | seed`` keys of the seeds of ``rows[i]``, for every i."""
    sub_ptr, sub_idx, _ = take_rows(seed_ptr, seed_idx, None, rows)
    return np.sort(seed_rows(sub_ptr).astype(np.int64) << 32 | sub_idx)
