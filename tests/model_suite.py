"""The checks every segue model passes, on tiny generated data (seconds per model, no downloads).

Use it for a model by subclassing :class:`ModelSuite` in a ``test_*.py`` file::

    from model_suite import ModelSuite

    class TestMyModel(ModelSuite):
        model_name = "mymodel"
        overrides = {"epochs": 3}          # config overrides that make training on tiny data fast

``tests/test_models.py`` already runs the suite for every name in ``MODEL_MODULES``, using
``FAST_OVERRIDES[name]`` as the overrides; add a line there to speed up a slow default config. A model
that fails to import or fit fails the suite. The data is :func:`conftest.genre_playlists`.

Code paths that only run at scale (dense score blocks after the first, title query blocks, ALS fold-in
chunks, blocked training) run here with their block sizes shrunk: ``SMALL_BLOCKS`` lists the module
constants, ``SMALL_FIT_BLOCKS[name]`` the training settings (checked in ``tests/test_models.py``); the results
must equal the unblocked run.
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
from conftest import GENRES, N_GENRES, genre_of, genre_playlists, seeds_of_genre

from segue.config import apply_overrides
from segue.data.store import Store, build_store
from segue.errors import InputError, ModelError, NotFoundError
from segue.io import read_json, write_json
from segue.models.base import CONFIG_FILE, Recommender, available_models, get_model_class, load_model

# Per-model config overrides that keep training on the tiny data fast.
FAST_OVERRIDES: dict[str, dict] = {
    "als": {"factors": 16, "iterations": 8, "alpha": 10.0, "regularization": 0.1},
    "cooccur": {"neighbors": 40},
    "meanvar": {"dim": 16, "hidden": 32, "batch_size": 64, "rounds": 3, "min_steps": 20, "threads": 1},
    "sequential": {"dim": 32, "heads": 2, "batch_size": 32, "rounds": 3, "min_steps": 20, "threads": 1},
}
# Which pattern a model is expected to recover: from seeds (default), titles only, or plain popularity.
PATTERN = {"popular": "popularity", "title": "title"}
# Module constants that bound block sizes at scale, and the tiny values that make every block path run.
SMALL_BLOCKS = {
    "segue.models.title": {"QUERY_BLOCK": 2},
    "segue.models.als": {"FOLD_IN_FLOATS": 1, "PREPARE_BLOCK_ROWS": 7},
}
# Training settings that bound memory at scale, shrunk so training runs blocked.
SMALL_FIT_BLOCKS: dict[str, dict] = {"cooccur": {"block_nnz": 200}}


def assert_same_scores(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding at the scores' scale (a dense product may sum in another order)."""
    finite = np.isfinite(expected)
    scale = float(np.abs(expected[finite]).max(initial=1.0))
    np.testing.assert_array_equal(np.isfinite(actual), finite)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-5, atol=1e-6 * scale)


def popularity_order(store: Store, k: int) -> np.ndarray:
    """The ``k`` tracks in most playlists, ties by lower id: the answer when nothing is known."""
    counts = np.diff(store.csr(binary=True).tocsc().indptr)
    return np.lexsort((np.arange(store.n_tracks), -counts))[:k]


class ModelSuite:
    """Mix-in of the shared model checks; subclasses set ``model_name`` (and optionally ``overrides``)."""

    model_name: str = ""
    overrides: dict = {}

    # ---- fixtures ----------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def store(cls, genre_store) -> Store:
        return genre_store

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, store):
        model_class = get_model_class(cls.model_name)  # a model that does not import fails here
        return model_class(cls.config(model_class)).fit(store)

    @classmethod
    def config(cls, model_class, **more):
        return apply_overrides(model_class.Config(), {**cls.overrides, **more})

    @property
    def pattern(self) -> str:
        return PATTERN.get(self.model_name, "seeds")

    @staticmethod
    def mixed_batch(store):
        """Seeds and titles of every kind: several seeds, one, none with and without a title."""
        seeds = [seeds_of_genre(store, g % N_GENRES, 1 + g % 5) for g in range(13)]
        seeds += [np.zeros(0, np.int32)] * 4 + [np.concatenate([seeds_of_genre(store, 2, 6),
                                                                 seeds_of_genre(store, 3, 2)])]
        titles = [None, "country", "rap", "my chill mix", ""] * 3 + ["worship", "christmas", None]
        return seeds, titles

    # ---- the checks --------------------------------------------------------------------------
    def test_recovers_obvious_pattern(self, model, store):
        seeds = [seeds_of_genre(store, g, 4) for g in range(N_GENRES)]
        titles = [GENRES[g] for g in range(N_GENRES)] if self.pattern == "title" else None
        if self.pattern != "seeds":
            seeds = [np.zeros(0, np.int32)] * N_GENRES
        ids, scores = model.recommend(seeds, k=5, titles=titles)
        if self.pattern == "popularity":
            assert (ids == popularity_order(store, 5)).all()
        else:
            assert genre_of(store, ids[:, 0]).tolist() == list(range(N_GENRES))
            assert (genre_of(store, ids) == np.arange(N_GENRES)[:, None]).mean() >= 0.9

    def test_batch_equals_single(self, model, store):
        seeds, titles = self.mixed_batch(store)
        first = np.arange(len(seeds)) % 3 != 1  # first tracks or a random sample, mixed in one batch
        ids, scores = model.recommend(seeds, k=30, titles=titles, first_seeds=first)
        for row in range(len(seeds)):
            one_ids, one_scores = model.recommend([seeds[row]], k=30, titles=[titles[row]],
                                                  first_seeds=first[row : row + 1])
            np.testing.assert_array_equal(one_ids[0], ids[row])
            assert_same_scores(one_scores[0], scores[row])

    def test_seed_order_matters_only_to_models_that_read_it(self, model, store):
        seeds, titles = self.mixed_batch(store)
        ids, scores = model.recommend(seeds, k=30, titles=titles)
        same_ids, same_scores = model.recommend(seeds, k=30, titles=titles, first_seeds=[True] * len(seeds))
        np.testing.assert_array_equal(same_ids, ids)  # None means every playlist's seeds are its first tracks
        assert_same_scores(same_scores, scores)
        if not model.reads_seed_order:
            random_ids, random_scores = model.recommend(seeds, k=30, titles=titles,
                                                        first_seeds=np.zeros(len(seeds), bool))
            np.testing.assert_array_equal(random_ids, ids)
            assert_same_scores(random_scores, scores)

    def test_blocked_paths_equal_the_unblocked_run(self, model, store, monkeypatch):
        seeds, titles = self.mixed_batch(store)
        first = np.arange(len(seeds)) % 4 != 2
        ids, scores = model.recommend(seeds, k=store.n_tracks, titles=titles, first_seeds=first)
        for module, constants in SMALL_BLOCKS.items():
            for name, value in constants.items():
                monkeypatch.setattr(importlib.import_module(module), name, value)
        for rows in (1, 3):  # dense score blocks of 1 and 3 playlists
            monkeypatch.setattr("segue.models.base.SCORE_BLOCK_FLOATS", rows * store.n_tracks)
            assert model.batch_rows() == rows
            blocked_ids, blocked_scores = model.recommend(seeds, k=store.n_tracks, titles=titles, first_seeds=first)
            np.testing.assert_array_equal(blocked_ids, ids)
            assert_same_scores(blocked_scores, scores)

    @pytest.mark.parametrize("exclude_seeds", [True, False])
    def test_sparse_path_equals_the_dense_one(self, model, store, monkeypatch, exclude_seeds):
        """Models that offer sparse candidates (for serving) rank exactly as their dense scores do."""
        seeds, titles = self.mixed_batch(store)
        for k in (1, 7, 30, store.n_tracks):
            monkeypatch.setattr("segue.models.base.CANDIDATE_SHARE", 0.0)  # dense only
            dense_ids, dense_scores = model.recommend(seeds, k=k, titles=titles, exclude_seeds=exclude_seeds)
            monkeypatch.setattr("segue.models.base.CANDIDATE_SHARE", 1.0)  # sparse wherever it is exact
            ids, scores = model.recommend(seeds, k=k, titles=titles, exclude_seeds=exclude_seeds)
            np.testing.assert_array_equal(ids, dense_ids)
            np.testing.assert_array_equal(scores, dense_scores)

    @pytest.mark.parametrize("exclude_seeds", [True, False])
    def test_pruned_path_equals_the_dense_one(self, model, store, monkeypatch, exclude_seeds):
        """Embedding models rank seeded playlists from the songs with the longest vectors where that is
        provably exact (segue.models._dot): the dense path's ids, its scores up to float rounding. Levels
        shrunk to 16 songs and up so that the path runs on tiny data (where vector lengths are too even for
        it to answer many playlists: tests/test_models.py checks that it does on a skewed catalogue)."""
        if type(model)._pruned_top_k is Recommender._pruned_top_k:
            pytest.skip(f"{model.name} has no pruned path")
        import segue.models._dot as dot

        seeds, titles = self.mixed_batch(store)
        for k in (1, 7, 30):
            monkeypatch.setattr(dot, "HEAD_SHARE", 0.0)  # no levels: dense only
            monkeypatch.setattr(model, "_norm", None)
            assert model._norm_order() is None
            dense_ids, dense_scores = model.recommend(seeds, k=k, titles=titles, exclude_seeds=exclude_seeds)
            monkeypatch.setattr(dot, "HEAD_SHARE", 0.5)
            monkeypatch.setattr(dot, "MIN_FIRST_LEVEL", 16)
            monkeypatch.setattr(dot, "FIRST_SHARE", 0.0)
            monkeypatch.setattr(dot, "MIN_CATALOGUE", 0)
            monkeypatch.setattr(model, "_norm", None)
            assert model._norm_order() is not None
            ids, scores = model.recommend(seeds, k=k, titles=titles, exclude_seeds=exclude_seeds)
            np.testing.assert_array_equal(ids, dense_ids)
            assert_same_scores(scores, dense_scores)

    def test_seeds_are_excluded(self, model, store):
        seeds = [seeds_of_genre(store, g, 10) for g in range(N_GENRES)]
        ids, _ = model.recommend(seeds, k=40)
        for row, seed in enumerate(seeds):
            assert not set(ids[row].tolist()) & set(seed.tolist())
        kept, _ = model.recommend(seeds[:1], k=store.n_tracks, exclude_seeds=False)
        assert set(seeds[0].tolist()) <= set(kept[0].tolist())

    def test_title_only(self, model, store):
        ids, scores = model.recommend([np.zeros(0, np.int32)] * 3, k=10,
                                      titles=["rap", "Christmas Songs!!", "my worship"])
        assert np.isfinite(scores).all()
        if self.pattern == "popularity":
            assert (ids == popularity_order(store, 10)).all()  # popular ignores titles
        else:
            wanted = np.array([GENRES.index("rap"), GENRES.index("christmas"), GENRES.index("worship")])
            assert (genre_of(store, ids) == wanted[:, None]).mean() >= 0.9

    def test_zero_seeds_no_title_is_the_popularity_ranking(self, model, store):
        ids, scores = model.recommend([np.zeros(0, np.int32)] * 3, k=10, titles=[None, "", "!!"])
        assert (ids == popularity_order(store, 10)).all() and np.isfinite(scores).all()
        assert np.all(np.diff(scores, axis=1) <= 0)
        again, _ = model.recommend([[]], k=10)
        assert (again == popularity_order(store, 10)).all()

    def test_shapes_dtypes_and_padding(self, model, store):
        seeds = [seeds_of_genre(store, 1, 3), np.zeros(0, np.int32)]
        k = store.n_tracks + 7
        ids, scores = model.recommend(seeds, k=k, titles=["rap", None])
        assert ids.shape == scores.shape == (2, k)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        valid = ids >= 0
        assert valid[0].sum() == store.n_tracks - 3 and valid[1].sum() == store.n_tracks
        assert np.isneginf(scores[~valid]).all() and np.isfinite(scores[valid]).all()
        assert (valid[:, :-1] >= valid[:, 1:]).all()  # padding only at the end
        assert len(set(ids[0][valid[0]].tolist())) == valid[0].sum()
        for row in range(2):
            steps = np.diff(scores[row][valid[row]])
            assert np.all(steps <= 0)
            assert np.all(np.diff(ids[row][valid[row]])[steps == 0] > 0)  # equal scores: lower id first

    def test_save_load_round_trip(self, model, store, tmp_path):
        seeds = [seeds_of_genre(store, g, 2) for g in range(N_GENRES)] + [np.zeros(0, np.int32)]
        titles = [None] * N_GENRES + ["chill"]
        ids, scores = model.recommend(seeds, k=50, titles=titles)
        model.save(tmp_path / "model")
        loaded = load_model(tmp_path / "model", store=store)
        assert type(loaded) is type(model) and loaded.config == model.config
        assert loaded.model_id == model.model_id
        again_ids, again_scores = loaded.recommend(seeds, k=50, titles=titles)
        np.testing.assert_array_equal(again_ids, ids)
        np.testing.assert_array_equal(again_scores, scores)

    def test_damaged_directory_is_a_clear_error(self, model, tmp_path):
        model.save(tmp_path / "model")
        config = read_json(tmp_path / "model" / CONFIG_FILE)
        first_setting = next(iter(config["config"]))
        cases = {
            "corrupt config": lambda d: (d / CONFIG_FILE).write_text('{"model": "x", '),
            "config without n_tracks": lambda d: write_json(
                d / CONFIG_FILE, {k: v for k, v in config.items() if k != "n_tracks"}),
            "config with a setting of the wrong type": lambda d: write_json(
                d / CONFIG_FILE, {**config, "config": {**config["config"], first_setting: [1]}}),
        }
        for name in type(model).array_files:
            cases[f"truncated {name}"] = lambda d, name=name: (d / name).write_bytes((d / name).read_bytes()[:100])
            cases[f"empty {name}"] = lambda d, name=name: (d / name).write_bytes(b"")
        for case, damage in cases.items():
            directory = tmp_path / case.replace(" ", "_")
            model.save(directory)
            damage(directory)
            with pytest.raises(ModelError, match=f"model {directory} is damaged .*; retrain"):
                load_model(directory)

    def test_other_vocabulary_is_refused(self, model, store, tmp_path):
        model.save(tmp_path / "model")
        other = build_store(genre_playlists(seed=1, n_playlists=40, offset=1000), tmp_path / "other")
        with pytest.raises(ModelError, match="another track vocabulary"):
            load_model(tmp_path / "model", store=other)

    def test_bad_input(self, model, store):
        with pytest.raises(IndexError, match="out of range"):
            model.recommend([[store.n_tracks]], k=5)
        with pytest.raises(IndexError):
            model.recommend([[-1]], k=5)
        with pytest.raises(InputError, match="titles"):
            model.recommend([[0], [1]], k=5, titles=["one"])
        for bad in ([True], [True, "yes"], [[True, False]]):
            with pytest.raises(InputError, match="first_seeds should be one bool per playlist"):
                model.recommend([[0], [1]], k=5, first_seeds=bad)
        for bad_k in (0, -3, 2.5):
            with pytest.raises(InputError, match="k must be"):
                model.recommend([[0]], k=bad_k)

    def test_unfitted_model_and_unknown_settings(self, model):
        cls = type(model)
        with pytest.raises(ModelError, match="not fitted"):
            cls().recommend([[0]], k=5)
        with pytest.raises(InputError, match="unknown setting"):
            apply_overrides(cls.Config(), ["no_such_setting=1"])
        assert dataclasses.is_dataclass(cls.Config)

    def test_every_numeric_setting_rejects_nan_and_infinity(self, model):
        config = model.Config()
        for field in dataclasses.fields(config):
            if isinstance(getattr(config, field.name), float):
                for bad in ("nan", "inf", "-inf"):
                    with pytest.raises(InputError, match=field.name):
                        apply_overrides(config, [f"{field.name}={bad}"])

    def test_unknown_model_lists_known_ones(self):
        with pytest.raises(NotFoundError) as info:
            get_model_class("no-such-model")
        for name in available_models():
            assert name in str(info.value)
