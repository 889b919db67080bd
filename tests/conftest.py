"""Shared fixtures and the one set of test data generators.

Generators (plain functions; import them with ``from conftest import genre_playlists``):

- :func:`genre_playlists`: tiny MPD-style playlists with an obvious pattern: ``N_GENRES`` genres, each with
  its own title words and its own ``TRACKS_PER_GENRE`` tracks (Zipf-like popularity inside the genre);
  every playlist takes tracks from one genre. "Seeds from genre g" and "a title naming genre g" must both
  be answered with genre-g tracks. :func:`genre_of` and :func:`seeds_of_genre` read the pattern back.
- the ``synth_playlists`` fixture: 300 playlists from segue's MPD-like generator (realistic fields).

- :func:`make_playlists`: five-genre playlists whose titles name their genre (``MIX_GENRES``), long enough
  for the write-up's 20 seeds + 10 targets; the neural tests use them.

Fixtures: ``genre_store`` (a session-wide store of :func:`genre_playlists`), ``synth_playlists``, ``cli``,
``meanvar_store`` / ``meanvar_full_store`` and ``trained_meanvar`` (one meanvar shared by the meanvar, neural,
genre and show tests).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

N_GENRES = 8
TRACKS_PER_GENRE = 25
N_PLAYLISTS = 320
GENRES = ("country", "rap", "chill", "workout", "christmas", "rock", "worship", "disney")
TITLE_FORMS = ("{g}", "{G}!!", "my {g} songs", "{g} 2017", "best {g}")


def track_uri(track: int) -> str:
    return f"spotify:track:{track:022d}"


def genre_playlists(seed: int = 0, n_playlists: int = N_PLAYLISTS, offset: int = 0) -> list[dict]:
    """MPD-style playlist dicts with one genre each; track number t belongs to genre t // TRACKS_PER_GENRE.

    ``offset`` shifts pids and track numbers (a store with another vocabulary).
    """
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


def genre_of(store, ids: np.ndarray) -> np.ndarray:
    """Genre of store track ids (from the URI number); -1 for padding."""
    numbers = np.array([int(store.track_uris[i].rsplit(":", 1)[1]) if i >= 0 else -TRACKS_PER_GENRE
                        for i in np.asarray(ids).ravel()])
    return (numbers // TRACKS_PER_GENRE).reshape(np.shape(ids))


def seeds_of_genre(store, genre: int, n: int) -> np.ndarray:
    """The ``n`` most common genre tracks, as store ids."""
    numbers = np.arange(genre * TRACKS_PER_GENRE, genre * TRACKS_PER_GENRE + n)
    return store.track_ids([track_uri(int(t)) for t in numbers])


@pytest.fixture(scope="session")
def genre_store(tmp_path_factory):
    """A store of :func:`genre_playlists` (read-only: tests must not change it)."""
    from segue.data.store import build_store

    return build_store(genre_playlists(), tmp_path_factory.mktemp("genre") / "store")


@pytest.fixture(scope="session")
def _synth_cache() -> list[dict]:
    from segue.data.synth import generate_playlists

    return list(generate_playlists(300, seed=7))


@pytest.fixture
def synth_playlists(_synth_cache) -> list[dict]:
    """300 synthetic MPD playlists (pids 0..299), a fresh copy per test so tests may edit them."""
    return copy.deepcopy(_synth_cache)


@pytest.fixture
def cli():
    """Run ``segue ARGS...`` in-process; returns click's Result (``exit_code``, ``output``, ``stderr``)."""
    from typer.testing import CliRunner

    import segue.cli  # noqa: F401  (registers every command on the app)
    from segue.commands import app

    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [str(a) for a in args])

    return run



# ---- five-genre playlists of 32-40 songs and one trained meanvar (the meanvar, neural, genre and show tests) ----
MIX_GENRES = ("country", "rap", "christmas", "rock", "chill")
# neural settings that train in seconds on the genre playlists
MEANVAR_FAST = dict(batch_size=64, rounds=3, holdout=0.1, dim=16, hidden=32, threads=1, min_steps=20)
SEQUENTIAL_FAST = dict(dim=16, heads=2, batch_size=16, rounds=3, min_steps=20, holdout=0.1, threads=1)


def make_playlists(n=250, seed=0, tracks_per_genre=40, min_len=5, max_len=40):
    """Genre-clustered playlists: each title names a genre and ~90% of its songs come from that genre."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, tracks_per_genre + 1)
    playlists = []
    for pid in range(n):
        genre = pid % len(MIX_GENRES)
        length = int(rng.integers(min_len, max_len + 1))
        picks = rng.choice(tracks_per_genre, size=min(length, tracks_per_genre), replace=False, p=pop / pop.sum())
        tracks = []
        for pos, t in enumerate(picks.tolist()):
            g = genre if rng.random() > 0.1 else int(rng.integers(len(MIX_GENRES)))
            tracks.append({"pos": pos, "track_uri": f"spotify:track:{g:02d}{t:020d}", "track_name": f"{MIX_GENRES[g]} {t}",
                           "artist_uri": f"spotify:artist:{g:02d}{t // 4:020d}", "artist_name": f"{MIX_GENRES[g]} a{t // 4}",
                           "album_uri": f"spotify:album:{g:02d}{t // 2:020d}", "album_name": f"{MIX_GENRES[g]} b{t // 2}"})
        playlists.append({"name": f"My {MIX_GENRES[genre].title()} Mix", "pid": 1000 + pid, "tracks": tracks})
    return playlists


@pytest.fixture(scope="session")
def meanvar_playlists() -> list[dict]:
    """300 genre playlists of 32-40 songs (so every one has songs 21-30); the first 250 are the training store."""
    return make_playlists(n=300, min_len=32)


@pytest.fixture(scope="session")
def meanvar_store(meanvar_playlists, tmp_path_factory):
    """The training store: the first 250 genre playlists."""
    from segue.data.store import build_store

    return build_store(meanvar_playlists[:250], tmp_path_factory.mktemp("mix") / "train")


@pytest.fixture(scope="session")
def meanvar_full_store(meanvar_playlists, tmp_path_factory):
    """All 300 genre playlists (the last 50 are not in the training store, and their songs have other ids)."""
    from segue.data.store import build_store

    return build_store(meanvar_playlists, tmp_path_factory.mktemp("mix") / "full")


@pytest.fixture(scope="session")
def trained_meanvar(meanvar_store, tmp_path_factory):
    """(model, directory): one meanvar trained on ``meanvar_store`` with MEANVAR_FAST and saved. Do not modify."""
    from segue.models.neural.meanvar import MeanVar, MeanVarConfig

    model = MeanVar(MeanVarConfig(**MEANVAR_FAST)).fit(meanvar_store)
    directory = tmp_path_factory.mktemp("mix") / "meanvar"
    model.save(directory)
    return model, directory


def _entity_key(uri, name, scope=None):
    """How the store keys an artist or album: its URI, else its name (an album's within its artist)."""
    if uri:
        return uri
    return ("name", name, scope) if name else None


def _assert_store_equals(store, playlists: list[dict]) -> None:
    """Every playlist, in order, with its metadata, tracks (order and repeats) and first-seen track metadata,
    artists and albums numbered in order of first appearance (keyed by URI, else by name)."""
    import numpy as np

    assert store.n_playlists == len(playlists)
    assert store.pids.tolist() == [p["pid"] for p in playlists]
    meta = store.playlist_meta.to_pylist()
    for row, playlist in zip(meta, playlists):
        assert row["name"] == playlist.get("name")
        assert row["description"] == playlist.get("description")
        collaborative = playlist.get("collaborative")
        assert row["collaborative"] == (None if collaborative is None else collaborative in ("true", True))
        for field in ("modified_at", "num_followers", "num_edits"):
            assert row[field] == playlist.get(field)
    uris = np.array(store.track_uris, dtype=object)
    first_seen: dict[str, dict] = {}
    for row, playlist in enumerate(playlists):
        got = uris[store.playlist_tracks(row)].tolist()
        assert got == [t["track_uri"] for t in playlist["tracks"]]
        for t in playlist["tracks"]:
            first_seen.setdefault(t["track_uri"], t)
    assert store.n_tracks == len(first_seen)
    assert list(first_seen) == store.track_uris  # ids in order of first appearance
    artist_of, album_of = {}, {}
    for info, (uri, t) in zip(store.tracks.to_pylist(), first_seen.items()):
        for field in ("track_name", "artist_uri", "artist_name", "album_uri", "album_name", "duration_ms"):
            assert info[field] == t.get(field), (uri, field)
        artist = _entity_key(t.get("artist_uri"), t.get("artist_name"))
        album = _entity_key(t.get("album_uri"), t.get("album_name"), artist)
        assert info["artist_id"] == (-1 if artist is None else artist_of.setdefault(artist, len(artist_of)))
        assert info["album_id"] == (-1 if album is None else album_of.setdefault(album, len(album_of)))
    assert store.n_artists == len(artist_of) and store.n_albums == len(album_of)
    counts = np.bincount(store.indices, minlength=store.n_tracks)
    assert np.array_equal(counts, store.track_count)


@pytest.fixture
def assert_store_equals():
    """``assert_store_equals(store, playlists)``: the store holds exactly these MPD playlist dicts."""
    return _assert_store_equals
