"""The checks every segue model passes, on tiny generated data (seconds per model, no downloads).

Use it for a model by subclassing :class:`ModelSuite` in a ``test_*.py`` file::

    from model_suite import ModelSuite

    class TestMyModel(ModelSuite):
        model_name = "mymodel"
        overrides = {"epochs": 3}          # config overrides that make training on tiny data fast

``tests/test_models.py`` already runs the suite for every name in ``MODEL_MODULES``, using
``FAST_OVERRIDES[name]`` as the overrides; add a line there to speed up a slow default config.

The tiny data: ``N_GENRES`` genres, each with its own title words and its own ``TRACKS_PER_GENRE``
tracks (skewed popularity inside the genre); every playlist takes tracks from one genre only. So
"seeds from genre g" and "a title naming genre g" must both be answered with genre-g tracks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from segue.config import apply_overrides
from segue.data.store import Store, build_store
from segue.errors import InputError, ModelError, NotFoundError
from segue.models.base import available_models, get_model_class, load_model

# Per-model config overrides that keep training on the tiny data fast.
FAST_OVERRIDES: dict[str, dict] = {
    "als": {"factors": 16, "iterations": 8, "alpha": 10.0, "regularization": 0.1},
    "cooccur": {"neighbors": 40},
    "meanvar": {"dim": 16, "hidden": 32, "batch_size": 64, "rounds": 3, "min_steps": 20, "threads": 1},
    "sequential": {"dim": 32, "heads": 2, "batch_size": 32, "rounds": 3, "min_steps": 20, "threads": 1},
}
# Which pattern a model is expected to recover: from seeds (default), titles only, or plain popularity.
PATTERN = {"popular": "popularity", "title": "title"}

N_GENRES = 8
TRACKS_PER_GENRE = 25
N_PLAYLISTS = 320
GENRES = ("country", "rap", "chill", "workout", "christmas", "rock", "worship", "disney")
TITLE_FORMS = ("{g}", "{G}!!", "my {g} songs", "{g} 2017", "best {g}")


def track_uri(track: int) -> str:
    return f"spotify:track:{track:022d}"


def tiny_playlists(seed: int = 0, n_playlists: int = N_PLAYLISTS, offset: int = 0) -> list[dict]:
    """MPD-style playlist dicts with one genre each; track number t belongs to genre t // TRACKS_PER_GENRE."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, TRACKS_PER_GENRE + 1)  # Zipf-like popularity inside each genre
    weights /= weights.sum()
    playlists = []
    for i in range(n_playlists):
        g = i % N_GENRES
        length = int(rng.integers(6, 13))
        picks = rng.choice(TRACKS_PER_GENRE, size=length, replace=False, p=weights) + g * TRACKS_PER_GENRE
        name = TITLE_FORMS[int(rng.integers(len(TITLE_FORMS)))].format(g=GENRES[g], G=GENRES[g].upper())
        playlists.append({
            "pid": offset + i,
            "name": name,
            "tracks": [
                {"pos": j, "track_uri": track_uri(int(t) + offset), "track_name": f"song {t}",
                 "artist_name": f"artist {t // 5}", "artist_uri": f"spotify:artist:{t // 5:022d}",
                 "album_name": f"album {t // 5}", "album_uri": f"spotify:album:{t // 5:022d}"}
                for j, t in enumerate(picks)
            ],
        })
    return playlists


def genre_of(store: Store, ids: np.ndarray) -> np.ndarray:
    """Genre of store track ids (from the URI number); -1 for padding."""
    numbers = np.array([int(store.track_uris[i].rsplit(":", 1)[1]) if i >= 0 else -TRACKS_PER_GENRE
                        for i in np.asarray(ids).ravel()])
    return (numbers // TRACKS_PER_GENRE).reshape(np.shape(ids))


def seeds_of_genre(store: Store, genre: int, n: int) -> np.ndarray:
    """The ``n`` most common genre tracks, as store ids."""
    numbers = np.arange(genre * TRACKS_PER_GENRE, genre * TRACKS_PER_GENRE + n)
    return store.track_ids([track_uri(int(t)) for t in numbers])


class ModelSuite:
    """Mix-in of the shared model checks; subclasses set ``model_name`` (and optionally ``overrides``)."""

    model_name: str = ""
    overrides: dict = {}

    # ---- fixtures ----------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def store(cls, tmp_path_factory) -> Store:
        return build_store(tiny_playlists(), tmp_path_factory.mktemp("store") / "store")

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, store):
        try:
            model_class = get_model_class(cls.model_name)
        except (ImportError, KeyError) as exc:
            pytest.skip(f"model {cls.model_name!r} is not available yet ({exc})")
        config = apply_overrides(model_class.Config(), dict(cls.overrides))
        return model_class(config).fit(store)

    @property
    def pattern(self) -> str:
        return PATTERN.get(self.model_name, "seeds")

    # ---- the checks --------------------------------------------------------------------------
    def test_recovers_obvious_pattern(self, model, store):
        seeds = [seeds_of_genre(store, g, 4) for g in range(N_GENRES)]
        titles = [GENRES[g] for g in range(N_GENRES)] if self.pattern == "title" else None
        if self.pattern != "seeds":
            seeds = [np.zeros(0, np.int32)] * N_GENRES
        ids, scores = model.recommend(seeds, k=5, titles=titles)
        if self.pattern == "popularity":
            counts = np.diff(store.csr().tocsc().indptr)
            assert (counts[ids[:, 0]] == counts.max()).all()
        else:
            assert genre_of(store, ids[:, 0]).tolist() == list(range(N_GENRES))
            assert (genre_of(store, ids) == np.arange(N_GENRES)[:, None]).mean() >= 0.9

    def test_batch_equals_single(self, model, store):
        seeds = [seeds_of_genre(store, 0, 3), np.zeros(0, np.int32), seeds_of_genre(store, 5, 1),
                 np.concatenate([seeds_of_genre(store, 2, 6), seeds_of_genre(store, 3, 2)])]
        titles = ["country", "rap", None, "my chill mix"]
        ids, scores = model.recommend(seeds, k=30, titles=titles)
        for row in range(len(seeds)):
            one_ids, one_scores = model.recommend([seeds[row]], k=30, titles=[titles[row]])
            np.testing.assert_allclose(one_scores[0], scores[row], rtol=1e-4, atol=1e-6)
            differ = np.flatnonzero(one_ids[0] != ids[row])
            # rank positions may only differ where the score is (numerically) tied with a neighbour
            assert all(_tied(scores[row], p) for p in differ), (row, differ, scores[row][differ])

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
        assert (ids >= 0).all() and np.isfinite(scores).all()
        if self.pattern != "popularity":
            wanted = np.array([GENRES.index("rap"), GENRES.index("christmas"), GENRES.index("worship")])
            assert (genre_of(store, ids) == wanted[:, None]).mean() >= 0.9

    def test_zero_seeds_no_title(self, model, store):
        ids, scores = model.recommend([np.zeros(0, np.int32)] * 2, k=10, titles=[None, ""])
        assert (ids >= 0).all() and np.isfinite(scores).all()
        assert np.all(np.diff(scores, axis=1) <= 0)
        again, _ = model.recommend([[]], k=10)
        assert (again >= 0).all()

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
            assert np.all(np.diff(scores[row][valid[row]]) <= 0)

    def test_save_load_round_trip(self, model, store, tmp_path):
        seeds = [seeds_of_genre(store, g, 2) for g in range(N_GENRES)] + [np.zeros(0, np.int32)]
        titles = [None] * N_GENRES + ["chill"]
        ids, scores = model.recommend(seeds, k=50, titles=titles)
        model.save(tmp_path / "model")
        loaded = load_model(tmp_path / "model", store=store)
        assert type(loaded) is type(model) and loaded.config == model.config
        again_ids, again_scores = loaded.recommend(seeds, k=50, titles=titles)
        np.testing.assert_array_equal(again_ids, ids)
        np.testing.assert_array_equal(again_scores, scores)

    def test_other_vocabulary_is_refused(self, model, store, tmp_path):
        model.save(tmp_path / "model")
        other = build_store(tiny_playlists(seed=1, n_playlists=40, offset=1000), tmp_path / "other")
        with pytest.raises(ModelError, match="another track vocabulary"):
            load_model(tmp_path / "model", store=other)

    def test_bad_input(self, model, store):
        with pytest.raises(IndexError, match="out of range"):
            model.recommend([[store.n_tracks]], k=5)
        with pytest.raises(IndexError):
            model.recommend([[-1]], k=5)
        with pytest.raises(InputError, match="titles"):
            model.recommend([[0], [1]], k=5, titles=["one"])
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

    def test_unknown_model_lists_known_ones(self):
        with pytest.raises(NotFoundError) as info:
            get_model_class("no-such-model")
        for name in available_models():
            assert name in str(info.value)


def _tied(scores: np.ndarray, position: int) -> bool:
    """True when scores[position] equals a neighbour's score, or sits at the end of the list (the tie
    may be with a track just past the cut)."""
    near = [q for q in (position - 1, position + 1) if 0 <= q < len(scores)]
    at_end = position == len(scores) - 1 or np.isclose(scores[position], scores[-1], rtol=1e-4, atol=1e-6)
    return at_end or any(np.isclose(scores[position], scores[q], rtol=1e-4, atol=1e-6) for q in near)
