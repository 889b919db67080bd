"""Every registered model runs the shared suite (tests/model_suite.py); plus the train/recommend CLI,
settings checks, the shared title fallback and the helpers in models/_common.py."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from conftest import genre_playlists, seeds_of_genre
from model_suite import FAST_OVERRIDES, SMALL_FIT_BLOCKS, ModelSuite, popularity_order
from typer.testing import CliRunner

from segue.config import apply_overrides, config_from_dict
from segue.data.mpd import normalize_title
from segue.data.store import build_store
from segue.errors import InputError, ModelError
from segue.models._common import scale_rows, sparse_top_n, track_popularity
from segue.models.base import FALLBACK_DIR, MODEL_MODULES, as_seed_csr, get_model_class, load_model
from segue.models.cooccur import item_blocks
from segue.models.title import distinct_titles

for _name in MODEL_MODULES:
    globals()[f"TestModel_{_name}"] = type(
        f"TestModel_{_name}", (ModelSuite,), {"model_name": _name, "overrides": FAST_OVERRIDES.get(_name, {})}
    )


def _cli(*args):
    from segue.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_train_and_recommend_cli(genre_store, tmp_path):
    out = tmp_path / "als"
    result = _cli("train", "als", "--store", genre_store.path, "--out", out, "--set", "factors=8",
                  "--set", "iterations=3", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "trained als on 320 playlists" in result.output and "peak memory" in result.output
    assert load_model(out).config.factors == 8

    seed = genre_store.track_uris[int(seeds_of_genre(genre_store, 0, 1)[0])]
    result = _cli("recommend", out, "--track", seed, "-k", "5")
    assert result.exit_code == 0, result.output
    assert "rank" in result.output and "song" in result.output

    pid = int(genre_store.pids[3])
    result = _cli("recommend", out, "--pid", pid, "--seeds", "3", "-k", "10")
    assert result.exit_code == 0, result.output
    assert "first 3 of" in result.output and "real continuation" in result.output

    result = _cli("recommend", out, "--title", "country", "-k", "3")
    assert result.exit_code == 0, result.output


def test_cli_errors(genre_store, tmp_path):
    out = tmp_path / "popular"
    assert _cli("train", "popular", "--store", genre_store.path, "--out", out, "--no-progress").exit_code == 0
    cases = [
        (("train", "nope", "--store", genre_store.path, "--out", tmp_path / "x"), "known models: popular"),
        (("train", "popular", "--store", genre_store.path, "--out", tmp_path / "x", "--set", "bogus=1"),
         "unknown setting 'bogus'"),
        (("train", "popular", "--store", genre_store.path, "--out", tmp_path / "x", "--device", "cuda"),
         "no device setting"),
        (("train", "popular", "--store", genre_store.path, "--out", tmp_path / "x", "--nproc", "2"),
         "does not support --nproc"),
        (("recommend", out, "--track", "spotify:track:unknown"), "not in the store"),
        (("recommend", out, "--pid", 10**9), "not in the store"),
        (("recommend", out, "--pid", 1, "-k", 0), "k must be"),
        (("recommend", out), "--track"),
    ]
    for args, message in cases:
        result = _cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)


@pytest.mark.parametrize("weighting", ["linear", "bm25"])
def test_als_fold_in_is_the_exact_user_solve(genre_store, weighting):
    from implicit.cpu.als import AlternatingLeastSquares

    from segue.models.als import ALS, ALSConfig

    model = ALS(ALSConfig(factors=8, iterations=3, weighting=weighting)).fit(genre_store)
    x = genre_store.csr()
    confidence = sp.csr_matrix((model._weights(x.indptr, x.indices), x.indices, x.indptr), shape=x.shape)
    reference = AlternatingLeastSquares(factors=8, regularization=model.config.regularization,
                                        alpha=model.config.alpha, iterations=3, random_state=0, use_cg=False)
    reference.fit(confidence, show_progress=False)
    model.item_factors = np.asarray(reference.item_factors, dtype=np.float32)
    model._prepare()
    rows = np.arange(25)
    expected = reference.recalculate_user(rows, confidence[rows])
    folded = model.fold_in(x.indptr[: len(rows) + 1], x.indices[: x.indptr[len(rows)]])
    np.testing.assert_allclose(folded, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("model, setting, message", [
    ("als", "threads=-4", "setting threads=-4: must be >= 0"),
    ("als", "factors=0", "setting factors=0: must be >= 1"),
    ("als", "weighting=tfidf", "setting weighting='tfidf': expected one of linear, bm25"),
    ("cooccur", "power=nan", "setting power=nan: expected a finite number"),
    ("cooccur", "title_weight=inf", "setting title_weight=inf: expected a finite number"),
    ("cooccur", "min_cooccurrence=-3", "setting min_cooccurrence=-3: must be >= 1"),
    ("cooccur", "alpha=1.5", "setting alpha=1.5: must be <= 1"),
    ("title", "min_similarity=-0.1", "setting min_similarity=-0.1: must be >= 0"),
    ("popular", "count=plays", "setting count='plays': expected one of playlists, entries"),
])
def test_settings_out_of_range_are_rejected_with_their_name(model, setting, message):
    cls = get_model_class(model)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        apply_overrides(cls.Config(), [setting])
    key, value = setting.split("=")
    typed = apply_overrides(cls.Config(), {})  # the same check on a config built in code or from config.json
    value = type(getattr(typed, key))(value)
    with pytest.raises(InputError, match=f"setting {key}="):
        cls.Config(**{key: value})
    with pytest.raises(InputError, match=f"setting {key}="):
        config_from_dict(cls.Config, {key: value})


def test_cli_rejects_a_bad_setting(genre_store, tmp_path):
    result = _cli("train", "als", "--store", genre_store.path, "--out", tmp_path / "m", "--set", "threads=-4")
    assert result.exit_code == 1 and "setting threads=-4: must be >= 0" in result.output
    assert not (tmp_path / "m").exists()


def _fast(name, **more):
    cls = get_model_class(name)
    return cls(apply_overrides(cls.Config(), {**FAST_OVERRIDES.get(name, {}), **more}))


def test_shared_title_fallback_is_one_copy_on_disk_and_in_memory(genre_store, tmp_path):
    _fast("title").fit(genre_store).save(tmp_path / "models" / "title")
    seeds = [seeds_of_genre(genre_store, 0, 2), np.zeros(0, np.int32), np.zeros(0, np.int32)]
    titles = ["rap", "christmas", None]
    embedded = _fast("cooccur").fit(genre_store)
    expected = embedded.recommend(seeds, k=20, titles=titles)
    for name in ("cooccur", "als"):
        model = _fast(name, fallback=str(tmp_path / "models" / "title")).fit(genre_store)
        model.save(tmp_path / "models" / name)
        assert not (tmp_path / "models" / name / FALLBACK_DIR).exists()
    cooccur, als = (load_model(tmp_path / "models" / name, store=genre_store) for name in ("cooccur", "als"))
    assert cooccur.fallback is als.fallback  # one title model in memory
    for got, want in zip(cooccur.recommend(seeds, k=20, titles=titles), expected):
        np.testing.assert_array_equal(got, want)

    # moved together (the relative path) or the model directory alone (the absolute path): still found
    shutil.copytree(tmp_path / "models", tmp_path / "moved")
    shutil.copytree(tmp_path / "models" / "als", tmp_path / "elsewhere" / "als")
    for directory in (tmp_path / "moved" / "als", tmp_path / "elsewhere" / "als"):
        assert load_model(directory).recommend(seeds, k=5, titles=titles)[0].shape == (3, 5)
    moved = load_model(tmp_path / "moved" / "als")
    assert moved.fallback.store_info == cooccur.fallback.store_info

    # a retrained or removed fallback is refused, naming where it was expected
    _fast("title").fit(genre_store).save(tmp_path / "models" / "title")
    shutil.rmtree(tmp_path / "moved" / "title")
    for directory in (tmp_path / "models" / "cooccur", tmp_path / "moved" / "cooccur"):
        with pytest.raises(ModelError, match="missing or was retrained"):
            load_model(directory)


def test_fallback_setting_checks_and_none(genre_store, tmp_path):
    _fast("popular").fit(genre_store).save(tmp_path / "popular")
    with pytest.raises(InputError, match="holds a popular model, not a title model"):
        _fast("cooccur", fallback=str(tmp_path / "popular")).fit(genre_store)
    with pytest.raises(InputError, match="setting fallback='nowhere': expected title, none, or the directory"):
        _fast("cooccur", fallback="nowhere").fit(genre_store)
    model = _fast("cooccur", fallback="none").fit(genre_store)
    assert model.fallback is None
    model.save(tmp_path / "none")
    assert not (tmp_path / "none" / FALLBACK_DIR).exists() and load_model(tmp_path / "none").fallback is None
    ids, _ = model.recommend([np.zeros(0, np.int32)], k=10, titles=["rap"])  # no titles: popularity
    assert (ids[0] == popularity_order(genre_store, 10)).all()


def test_models_fitted_on_one_store_share_one_title_fit(genre_store):
    first, second = _fast("cooccur").fit(genre_store), _fast("als").fit(genre_store)
    assert first.fallback is second.fallback


@pytest.mark.parametrize("copies", [1, 20])  # a request's few titles are normalised in Python, many by Arrow
def test_distinct_titles_match_normalising_every_name(copies):
    # letters past the surrogates and outside the BMP: UTF-8 byte order and code point order agree on them
    names = ["Rock!!", None, "rock", "", "Chill Vibes 🌴", "chill   vibes", "90's", "ROCK", None, "Ünïcode",
             "\U00010400 deseret", "\ud7b0 jamo", "zz"] * copies
    for given in (names, pa.array(names, pa.string())):
        titles, index = distinct_titles(given)
        expected = sorted({normalize_title(n) for n in names} | {""})
        assert titles == expected
        assert [titles[i] for i in index] == [normalize_title(n) for n in names]


def test_sparse_top_n_keeps_the_largest_and_breaks_ties_by_column():
    dense = np.array([[1, 3, 3, 0, 3, 2], [0, 0, 5, 0, 0, 0], [2, 2, 2, 2, 2, 2]], dtype=np.float32)
    top = sparse_top_n(sp.csr_matrix(dense), 2).toarray()
    assert top.tolist() == [[0, 3, 3, 0, 0, 0], [0, 0, 5, 0, 0, 0], [2, 2, 0, 0, 0, 0]]
    assert sparse_top_n(sp.csr_matrix(dense), 0).nnz == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_top_n_matches_a_plain_sort_on_random_tied_rows(dtype):
    rng = np.random.default_rng(1)
    for _ in range(100):
        rows, cols, n = int(rng.integers(1, 6)), int(rng.integers(1, 15)), int(rng.integers(1, 6))
        dense = (rng.integers(-3, 4, size=(rows, cols)) * (rng.random((rows, cols)) > 0.3)).astype(dtype)
        matrix = sp.csr_matrix(dense)
        shuffled = np.lexsort((rng.random(matrix.nnz), np.repeat(np.arange(rows), np.diff(matrix.indptr))))
        matrix = sp.csr_matrix((matrix.data[shuffled], matrix.indices[shuffled], matrix.indptr), shape=dense.shape)
        expected = np.zeros_like(dense)
        for r in range(rows):
            keep = sorted(np.flatnonzero(dense[r]).tolist(), key=lambda c: (-dense[r, c], c))[:n]
            expected[r, keep] = dense[r, keep]
        np.testing.assert_array_equal(sparse_top_n(matrix, n).toarray(), expected)


def test_track_popularity_counts_playlists_or_entries(tmp_path):
    playlists = genre_playlists(n_playlists=6)
    playlists[0]["tracks"].append(dict(playlists[0]["tracks"][0], pos=len(playlists[0]["tracks"])))  # a repeat
    store = build_store(playlists, tmp_path / "store")
    entries = np.bincount(store.indices, minlength=store.n_tracks)
    in_playlists = np.array([sum(t in set(store.playlist_tracks(r).tolist()) for r in range(store.n_playlists))
                             for t in range(store.n_tracks)])
    np.testing.assert_array_equal(track_popularity(store, "entries"), entries)
    np.testing.assert_array_equal(track_popularity(store, "playlists"), in_playlists)
    assert (entries != in_playlists).any()


@pytest.mark.parametrize("name", sorted(SMALL_FIT_BLOCKS))
def test_blocked_training_equals_the_unblocked_one(name, genre_store):
    seeds, titles = ModelSuite.mixed_batch(genre_store)
    unblocked, blocked = (_fast(name, **small).fit(genre_store) for small in ({}, SMALL_FIT_BLOCKS[name]))
    for got, want in zip(blocked.recommend(seeds, k=genre_store.n_tracks, titles=titles),
                         unblocked.recommend(seeds, k=genre_store.n_tracks, titles=titles)):
        np.testing.assert_array_equal(got, want)


def test_small_block_nnz_really_trains_cooccur_in_blocks(genre_store):
    x = genre_store.csr(binary=True)
    estimate = x.T.tocsr() @ np.diff(x.indptr).astype(np.float64)
    assert len(item_blocks(estimate, SMALL_FIT_BLOCKS["cooccur"]["block_nnz"])) > 10


@pytest.mark.parametrize("name, settings", [
    ("title", {}),
    ("cooccur", {"neighbors": 40}),
    ("cooccur", {"neighbors": 40, "popularity_weight": 0.0}),
    ("cooccur", {"neighbors": 10, "title_weight": 0.0, "power": 2.0}),
    ("cooccur", {"neighbors": 40, "fallback": "none"}),
])
def test_sparse_candidates_are_taken_and_rank_as_the_dense_scores(genre_store, monkeypatch, name, settings):
    """The serving path (seeds' neighbours + title support + the popularity head) is really used for most
    playlists, and gives the dense path's ids and scores bit for bit, under settings that change the
    background (no popularity blend, no titles, no fallback)."""
    cls = get_model_class(name)
    model = cls(apply_overrides(cls.Config(), [f"{k}={v}" for k, v in settings.items()])).fit(genre_store)
    seeds, titles = ModelSuite.mixed_batch(genre_store)
    seeds += [seeds_of_genre(genre_store, g, 1) for g in range(4)]
    titles += ["rock", None, "chill", "xyzzy"]
    dense_rows = []
    score_with_fallback = type(model)._score_with_fallback
    monkeypatch.setattr(type(model), "_score_with_fallback",
                        lambda self, indptr, *rest: dense_rows.append(len(indptr) - 1)
                        or score_with_fallback(self, indptr, *rest))
    for k in (1, 10, 50):
        monkeypatch.setattr("segue.models.base.CANDIDATE_SHARE", 0.0)
        expected = model.recommend(seeds, k=k, titles=titles)
        monkeypatch.setattr("segue.models.base.CANDIDATE_SHARE", 1.0)
        dense_rows.clear()
        actual = model.recommend(seeds, k=k, titles=titles)
        if k <= 10:  # (at k=50 with no popularity blend, a lone seed's 40 neighbours leave ties at 0: dense)
            assert sum(dense_rows) <= len(seeds) // 4, f"k={k}: {sum(dense_rows)} of {len(seeds)} rows dense"
        np.testing.assert_array_equal(actual[0], expected[0])
        np.testing.assert_array_equal(actual[1], expected[1])


def _scale_rows_reference(scores):
    top = np.max(scores, axis=1, keepdims=True, where=np.isfinite(scores), initial=0.0)
    top[top <= 0] = 1.0
    return scores / top


def test_scale_rows_divides_by_the_largest_finite_value():
    rows = np.array([[1, 4, 2], [np.nan, 2, 1], [np.inf, 3, -np.inf], [-np.inf] * 3, [-2, -1, 0], [0.5, -np.inf, 0.25]],
                    dtype=np.float32)
    np.testing.assert_array_equal(scale_rows(rows.copy()), _scale_rows_reference(rows))


@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4, 5, 6], [1, 2], [0, 3, 6], [5]])
def test_title_blend_without_dense_rows_equals_the_dense_blend(genre_store, monkeypatch, rows):
    """add_scaled_scores (background in one pass, the sparse part at its support) gives, bit for bit, what adding
    the scaled dense title rows gives, with unseen tracks, unmatched and empty titles, and -inf/NaN scores."""
    title = get_model_class("title")().fit(genre_store)
    title.popularity = title.popularity.copy()
    title.popularity[[3, 17, 40]] = 0  # unseen by the title model
    title._prepare()
    rng = np.random.default_rng(1)
    scores = rng.random((7, genre_store.n_tracks), dtype=np.float32)
    scores[2, 5], scores[4, 9], scores[1, 11] = -np.inf, np.nan, -np.inf
    rows = np.array(rows)
    titles = ["rock", "xyzzy", "", "country roadtrip", "rock", "chill", "rap"][: len(rows)]
    factor = rng.random(len(rows), dtype=np.float32) + 0.1
    empty = np.zeros(len(rows) + 1, np.int64), np.zeros(0, np.int32)
    expected = scores.copy()
    expected[rows] += factor[:, None] * _scale_rows_reference(title._score(*empty, titles))
    actual = scores.copy()
    title.add_scaled_scores(actual, rows, titles, factor)
    np.testing.assert_array_equal(actual, expected)
    monkeypatch.setattr(type(title), "_sparse_parts", lambda self, titles, canonical=True: None)  # the dense fallback
    actual = scores.copy()
    title.add_scaled_scores(actual, rows, titles, factor)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("name", ["als", "meanvar"])
def test_pruned_top_k_answers_most_playlists_of_a_skewed_catalogue_as_the_dense_path(tmp_path, monkeypatch, name):
    """On 2,000 generated playlists (55k songs, most in one playlist: short vectors for the tail) the pruned
    path answers most seeded playlists from a sixteenth to a quarter of the catalogue, titled ones included,
    with the dense ids. (On a few hundred playlists every song is rare and it rightly gives up.)"""
    import segue.models._dot as dot
    from segue.data.synth import generate_playlists

    store = build_store(generate_playlists(2000, seed=7), tmp_path / "store")
    cls = get_model_class(name)
    model = cls(apply_overrides(cls.Config(), [f"{k}={v}" for k, v in FAST_OVERRIDES[name].items()])).fit(store)
    rows = range(0, 2000, 33)
    playlists = [store.playlist_tracks(row) for row in rows]
    seeds = [tracks[: 1 + i % 25] for i, tracks in enumerate(playlists)]
    titles = [store.names[row] if i % 3 else None for i, row in enumerate(rows)]
    monkeypatch.setattr(dot, "HEAD_SHARE", 0.0)
    monkeypatch.setattr(model, "_norm", None)
    dense_ids, dense_scores = model.recommend(seeds, k=50, titles=titles)
    monkeypatch.setattr(dot, "HEAD_SHARE", 1 / 4)
    monkeypatch.setattr(dot, "FIRST_SHARE", 1 / 16)
    monkeypatch.setattr(dot, "MIN_FIRST_LEVEL", 64)
    monkeypatch.setattr(dot, "MIN_CATALOGUE", 0)
    monkeypatch.setattr(model, "_norm", None)
    answered = []
    pruned_top_k = dot.pruned_top_k
    monkeypatch.setattr(f"{cls._pruned_top_k.__module__}.pruned_top_k", lambda *a, **kw: answered.append(
        (found := pruned_top_k(*a, **kw))[2].sum()) or found)
    ids, scores = model.recommend(seeds, k=50, titles=titles)
    # the same songs, but for exact ties (songs of one playlist share their vectors) that the two paths'
    # products, summed in another order, may round apart: each chosen song has the dense k-th best score
    np.testing.assert_allclose(scores, dense_scores, rtol=1e-5, atol=1e-6)
    assert (ids == dense_ids).mean() > 0.99
    seed_ptr, seed_idx = as_seed_csr(seeds, store.n_tracks)
    full = model._score_with_fallback(seed_ptr, seed_idx, titles)
    np.testing.assert_allclose(np.take_along_axis(full, ids, axis=1), dense_scores, rtol=1e-5, atol=1e-6)
    for row, chosen in enumerate(ids):
        assert len(set(chosen)) == 50 and not set(chosen) & set(seeds[row])
    assert sum(answered) >= 0.8 * len(seeds), f"{sum(answered)} of {len(seeds)} answered by the pruned path"
