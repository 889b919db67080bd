"""Shared fixtures: tiny generated MPD playlists, one trained meanvar, and an in-process CLI runner."""

from __future__ import annotations

import copy

import numpy as np
import pytest


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


# ---- genre-clustered playlists and one trained meanvar (shared by the meanvar, genre and show tests) ----------
GENRES = ("country", "rap", "christmas", "rock", "chill")
# neural settings that train in seconds on the genre playlists
MEANVAR_FAST = dict(batch_size=64, rounds=3, holdout=0.1, dim=16, hidden=32, threads=1, min_steps=20)
SEQUENTIAL_FAST = dict(dim=16, heads=2, batch_size=16, rounds=3, min_steps=20, holdout=0.1, threads=1)


def make_playlists(n=250, seed=0, tracks_per_genre=40, min_len=5, max_len=40):
    """Genre-clustered playlists: each title names a genre and ~90% of its songs come from that genre."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, tracks_per_genre + 1)
    playlists = []
    for pid in range(n):
        genre = pid % len(GENRES)
        length = int(rng.integers(min_len, max_len + 1))
        picks = rng.choice(tracks_per_genre, size=min(length, tracks_per_genre), replace=False, p=pop / pop.sum())
        tracks = []
        for pos, t in enumerate(picks.tolist()):
            g = genre if rng.random() > 0.1 else int(rng.integers(len(GENRES)))
            tracks.append({"pos": pos, "track_uri": f"spotify:track:{g:02d}{t:020d}", "track_name": f"{GENRES[g]} {t}",
                           "artist_uri": f"spotify:artist:{g:02d}{t // 4:020d}", "artist_name": f"{GENRES[g]} a{t // 4}",
                           "album_uri": f"spotify:album:{g:02d}{t // 2:020d}", "album_name": f"{GENRES[g]} b{t // 2}"})
        playlists.append({"name": f"My {GENRES[genre].title()} Mix", "pid": 1000 + pid, "tracks": tracks})
    return playlists


@pytest.fixture(scope="session")
def genre_playlists() -> list[dict]:
    """300 genre playlists of 32-40 songs (so every one has songs 21-30); the first 250 are the training store."""
    return make_playlists(n=300, min_len=32)


@pytest.fixture(scope="session")
def genre_store(genre_playlists, tmp_path_factory):
    """The training store: the first 250 genre playlists."""
    from segue.data.store import build_store

    return build_store(genre_playlists[:250], tmp_path_factory.mktemp("genre") / "train")


@pytest.fixture(scope="session")
def genre_full_store(genre_playlists, tmp_path_factory):
    """All 300 genre playlists (the last 50 are not in the training store, and their songs have other ids)."""
    from segue.data.store import build_store

    return build_store(genre_playlists, tmp_path_factory.mktemp("genre") / "full")


@pytest.fixture(scope="session")
def trained_meanvar(genre_store, tmp_path_factory):
    """(model, directory): one meanvar trained on ``genre_store`` with MEANVAR_FAST and saved. Do not modify."""
    from segue.models.neural.meanvar import MeanVar, MeanVarConfig

    model = MeanVar(MeanVarConfig(**MEANVAR_FAST)).fit(genre_store)
    directory = tmp_path_factory.mktemp("genre") / "meanvar"
    model.save(directory)
    return model, directory
