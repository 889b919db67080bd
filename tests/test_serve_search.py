"""The track search index: prefix of any word in track/artist/album names, case and accents folded, most popular
first, the same answers as a plain scan; built once, beside the store or in the cache, never over a stranger."""

from __future__ import annotations

import os
import re
import unicodedata

import numpy as np
import pytest

from segue.data.store import build_store
from segue.errors import StoreError
from segue.serve.search import INDEX_FILE, SearchIndex, match_expression


def playlist(pid: int, *tracks: tuple[str, str, str]) -> dict:
    return {"pid": pid, "name": f"p{pid}", "tracks": [
        {"track_uri": f"spotify:track:{name.replace(' ', '')[:10]}{artist[:3]}", "track_name": name,
         "artist_name": artist, "artist_uri": f"spotify:artist:{artist}", "album_name": album,
         "album_uri": f"spotify:album:{album}", "duration_ms": 200_000} for name, artist, album in tracks]}


HALO = ("Halo", "Beyoncé", "I Am... Sasha Fierce")
CRAZY = ("Crazy in Love", "Beyoncé", "Dangerously in Love")
HALLO = ("Hallo Spaceboy", "David Bowie", "Outside")
CAFE = ("Café del Mar", "Energy 52", "Café del Mar")
TOKYO = ("東京タワー", "Ｍｏｎｏ", "Tōkyō Nights")


@pytest.fixture
def store(tmp_path):
    # popularity: CRAZY 3 playlists, HALO 2, the rest 1
    playlists = [playlist(0, CRAZY, HALO, HALLO), playlist(1, CRAZY, HALO, CAFE), playlist(2, CRAZY, TOKYO)]
    return build_store(playlists, tmp_path / "store")


def names(store, ids) -> list[str]:
    return [info["track_name"] for info in store.track_info(ids)]


def test_prefixes_of_any_word_case_and_accents_folded_most_popular_first(store):
    index = SearchIndex.open(store)
    assert names(store, index.search("ha")) == ["Halo", "Hallo Spaceboy"]  # Halo is in more playlists
    assert names(store, index.search("beyonce")) == ["Crazy in Love", "Halo"]  # artist, accent folded
    assert names(store, index.search("BEYONCÉ HA")) == ["Halo"]  # every word must match
    assert names(store, index.search("love")) == ["Crazy in Love"]  # any word, not only the first
    assert names(store, index.search("fierce")) == ["Halo"]  # album
    assert names(store, index.search("cafe d")) == ["Café del Mar"]
    assert names(store, index.search("tokyo")) == ["東京タワー"]
    assert names(store, index.search("東京")) == ["東京タワー"]
    assert names(store, index.search("mono")) == ["東京タワー"]  # full-width letters fold too
    assert names(store, index.search("ha", limit=1)) == ["Halo"]
    for nothing in ("zzz", "alo", "", "   ", "!!!", "🎄", '"', "*", "NEAR(a b)", "a\x00", "-ha"):
        assert len(index.search(nothing)) == 0 or nothing in ("a\x00", "-ha"), nothing
    assert names(store, index.search("-ha")) == ["Halo", "Hallo Spaceboy"]  # punctuation is not syntax


def test_match_expression_quotes_every_word():
    assert match_expression('be "yo" NEAR(x)') == '"be"* """yo"""* "NEAR(x)"*'
    assert match_expression("!! ?") is None


def fold(text: str | None) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text or "") if not unicodedata.combining(c)).casefold()


def test_same_answers_as_a_plain_scan(tmp_path, _synth_cache):
    store = build_store(_synth_cache, tmp_path / "store")
    index = SearchIndex.open(store)
    infos = store.track_info(np.arange(store.n_tracks))
    words = [set(re.findall(r"[^\W_]+", fold(f"{i['track_name']} {i['artist_name']} {i['album_name']}")))
             for i in infos]
    rank = np.lexsort((np.arange(store.n_tracks), -store.track_count))
    rng = np.random.default_rng(0)
    for track in rng.choice(store.n_tracks, 25, replace=False):
        some = sorted(words[track])
        query = " ".join(w[: rng.integers(1, len(w) + 1)] for w in rng.choice(some, min(2, len(some)), replace=False))
        terms = query.split()
        expected = [int(t) for t in rank if all(any(w.startswith(p) for w in words[t]) for p in terms)][:20]
        assert index.search(query, 20).tolist() == expected, query


def test_built_once_kept_beside_the_store_and_rebuilt_only_when_stale(store):
    path = store.path / INDEX_FILE
    SearchIndex.open(store)
    built = path.stat().st_mtime_ns
    SearchIndex.open(store)
    assert path.stat().st_mtime_ns == built  # reused
    import sqlite3

    with sqlite3.connect(path) as db:  # pretend it was built for another vocabulary
        db.execute("UPDATE meta SET value = 'sha256:other' WHERE key = 'fingerprint'")
    assert len(SearchIndex.open(store).search("halo")) == 1
    assert path.stat().st_mtime_ns != built
    assert not [p for p in store.path.iterdir() if p.name.startswith(f".{INDEX_FILE}")]  # no temporary left


def test_never_replaces_a_file_that_is_not_an_index(store):
    stranger = store.path / INDEX_FILE
    stranger.write_text("my notes")
    with pytest.raises(StoreError, match="not a segue search index"):
        SearchIndex.open(store)
    assert stranger.read_text() == "my notes"


def test_index_is_claimed_like_every_output(store):
    """A second process building the same index fails at once, naming the first; nothing is replaced."""
    from segue.errors import OutputError
    from segue.io import claim_output
    from segue.serve.search import SEARCH_INDEX_OUTPUT

    path = store.path / INDEX_FILE
    path.unlink(missing_ok=True)
    with claim_output(path, SEARCH_INDEX_OUTPUT, flag="--index"):
        with pytest.raises(OutputError, match="is being written by"):
            SearchIndex.open(store)
    assert not path.exists()
    assert SearchIndex.open(store).search("halo").size == 1
    assert SEARCH_INDEX_OUTPUT.owns(path) and not SEARCH_INDEX_OUTPUT.owns(store.path / "manifest.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_store_indexes_into_the_cache(store, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store.path.chmod(0o555)
    try:
        index = SearchIndex.open(store)
    finally:
        store.path.chmod(0o755)
    assert index.path.parent == tmp_path / "cache" / "segue" / "search"
    assert store.fingerprint.split(":")[-1][:32] in index.path.name


def test_read_only_store_path_choice(store, tmp_path, monkeypatch):
    from segue.serve import search

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(search.os, "access", lambda path, mode: False)
    path = search.default_index_path(store)
    assert path == tmp_path / "cache" / "segue" / "search" / f"{store.fingerprint.split(':')[-1][:32]}.sqlite"
