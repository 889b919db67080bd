"""Shared fixtures: tiny generated MPD playlists and an in-process CLI runner."""

from __future__ import annotations

import copy

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
