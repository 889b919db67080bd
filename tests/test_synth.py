"""The synthetic MPD generator: exact slice format, consistent counts, determinism and learnable structure."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from segue.data.mpd import normalize_title, parse_playlists
from segue.data.synth import (
    GENRES,
    SyntheticCatalog,
    catalog_for,
    generate_playlists,
    write_slices,
)
from segue.errors import InputError

N = 2000
PLAYLIST_FIELDS = [
    "name", "collaborative", "pid", "modified_at", "num_tracks", "num_albums", "num_artists",
    "num_followers", "num_edits", "duration_ms", "tracks",
]
TRACK_FIELDS = ["pos", "artist_name", "track_uri", "artist_uri", "track_name", "album_uri", "duration_ms", "album_name"]
URI = {kind: re.compile(rf"^spotify:{kind}:[0-9A-Za-z]{{22}}$") for kind in ("track", "artist", "album")}


@pytest.fixture(scope="module")
def playlists():
    return list(generate_playlists(N, seed=0))


@pytest.fixture(scope="module")
def catalog():
    return catalog_for(N, seed=0)


def test_writes_official_slice_files(tmp_path):
    out = tmp_path / "new" / "mpd"
    paths = write_slices(out, 2100, seed=3, tracks_approx=2000)
    assert [p.name for p in paths] == ["mpd.slice.0-999.json", "mpd.slice.1000-1999.json", "mpd.slice.2000-2099.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left
    pids = []
    for path in paths:
        doc = orjson.loads(path.read_bytes())
        assert list(doc) == ["info", "playlists"]
        info = doc["info"]
        assert info["version"] == "v1" and isinstance(info["generated_on"], str)
        assert info["slice"] == path.name[len("mpd.slice."):-len(".json")]
        pids += [p["pid"] for p in doc["playlists"]]
        parsed = parse_playlists(doc["playlists"], path.name)  # the project's own reader accepts it
        assert parsed.n_playlists == len(doc["playlists"]) and not parsed.warnings
    assert pids == list(range(2100))
    assert [len(orjson.loads(p.read_bytes())["playlists"]) for p in paths] == [1000, 1000, 100]
    # the same data from the iterator
    first = orjson.loads(paths[1].read_bytes())["playlists"][:3]
    assert first == list(generate_playlists(3, seed=3, tracks_approx=2000, start_pid=1000))


def test_rewrite_removes_stale_slices(tmp_path):
    write_slices(tmp_path, 2100, seed=0, tracks_approx=2000)
    (tmp_path / "notes.txt").write_text("keep me")
    paths = write_slices(tmp_path, 900, seed=0, tracks_approx=2000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mpd.slice.0-899.json", "notes.txt"]
    assert [p.name for p in paths] == ["mpd.slice.0-899.json"]


def test_fields_types_and_order(playlists):
    n_desc = 0
    for p in playlists:
        keys = list(p)
        if "description" in p:
            n_desc += 1
            assert keys.index("description") == keys.index("duration_ms") + 1
            assert isinstance(p["description"], str) and p["description"]
            keys.remove("description")
        assert keys == PLAYLIST_FIELDS
        assert isinstance(p["name"], str) and p["name"].strip()
        assert p["collaborative"] in ("true", "false")
        for key in ("pid", "modified_at", "num_tracks", "num_albums", "num_artists", "num_followers", "num_edits",
                    "duration_ms"):
            assert type(p[key]) is int, key
        assert p["modified_at"] % 86400 == 0
        assert 1262304000 <= p["modified_at"] < 1514764800  # 2010..2017
        assert p["num_followers"] >= 1 and p["num_edits"] >= 1
        for t in p["tracks"]:
            assert list(t) == TRACK_FIELDS
            assert type(t["pos"]) is int and type(t["duration_ms"]) is int and t["duration_ms"] > 0
            for key in ("artist_name", "track_name", "album_name"):
                assert isinstance(t[key], str) and t[key]
            for kind in ("track", "artist", "album"):
                assert URI[kind].match(t[f"{kind}_uri"]), t[f"{kind}_uri"]
    assert 0.005 < n_desc / len(playlists) < 0.05
    assert 0 < sum(p["collaborative"] == "true" for p in playlists) < 0.1 * len(playlists)


def test_counts_consistent_with_tracks(playlists):
    for p in playlists:
        tracks = p["tracks"]
        assert p["num_tracks"] == len(tracks)
        assert [t["pos"] for t in tracks] == list(range(len(tracks)))
        assert p["num_albums"] == len({t["album_uri"] for t in tracks})
        assert p["num_artists"] == len({t["artist_uri"] for t in tracks})
        assert p["duration_ms"] == sum(t["duration_ms"] for t in tracks)
        assert p["num_artists"] >= 3 and p["num_albums"] >= 2


def test_metadata_consistent_per_uri(playlists):
    seen: dict[str, tuple] = {}
    album_artist: dict[str, str] = {}
    for p in playlists:
        for t in p["tracks"]:
            meta = tuple(t[k] for k in TRACK_FIELDS[1:] if k != "track_uri")
            assert seen.setdefault(t["track_uri"], meta) == meta
            assert album_artist.setdefault(t["album_uri"], t["artist_uri"]) == t["artist_uri"]


def test_length_distribution(playlists):
    lengths = np.array([p["num_tracks"] for p in playlists])
    assert lengths.min() >= 5 and lengths.max() <= 250
    assert 42 <= np.median(lengths) <= 56
    assert 58 <= lengths.mean() <= 75
    repeats = sum(len({t["track_uri"] for t in p["tracks"]}) < p["num_tracks"] for p in playlists)
    assert repeats < 0.5 * len(playlists)  # the same track only occasionally repeats


def test_deterministic_per_seed():
    a = list(generate_playlists(300, seed=7, tracks_approx=3000))
    b = list(generate_playlists(300, seed=7, tracks_approx=3000))
    c = list(generate_playlists(300, seed=8, tracks_approx=3000))
    assert a == b
    assert [p["name"] for p in a] != [p["name"] for p in c]
    assert a[0]["tracks"][0]["track_uri"] != c[0]["tracks"][0]["track_uri"]
    # a pid's playlist does not depend on how the range is chunked
    middle = list(generate_playlists(20, seed=7, tracks_approx=3000, start_pid=990))
    assert [p["pid"] for p in middle] == list(range(990, 1010))
    assert middle[:10] == list(generate_playlists(1000, seed=7, tracks_approx=3000))[990:]


def test_titles_have_genres_and_generic_names(playlists):
    titles = Counter(normalize_title(p["name"]) for p in playlists)
    for title in ("country", "rap", "christmas", "workout", "chill", "rock"):
        assert titles[title] >= 10, title
    assert sum(titles[t] for t in ("my playlist", "summer", "jams", "feels", "lit", "new", "vibes")) >= 10
    assert any(ord(ch) > 0x2000 for p in playlists for ch in p["name"])  # some emoji
    assert len(titles) > 100


def test_playlists_follow_their_genre(playlists, catalog):
    country, christmas = GENRES.index("country"), GENRES.index("christmas")
    for title, genre in (("country", country), ("christmas", christmas)):
        shares = []
        for p in playlists:
            if normalize_title(p["name"]) == title:
                g = catalog.genres_of_uris([t["track_uri"] for t in p["tracks"]])
                assert (g >= 0).all()
                shares.append(np.mean(g == genre))
        assert len(shares) >= 10
        assert np.mean(shares) > 0.6, title
        assert np.median(shares) > 0.6, title


def test_popularity_runs_and_album_order(playlists, catalog):
    ids = catalog.track_ids([t["track_uri"] for p in playlists for t in p["tracks"]])
    counts = np.sort(np.bincount(ids, minlength=catalog.n_tracks))[::-1]
    top = counts[: len(counts) // 10].sum() / counts.sum()
    assert top > 0.3  # the top 10% of tracks take a good share of all entries (Zipf-like)
    offsets = np.cumsum([0] + [p["num_tracks"] for p in playlists])
    next_in_album = same_artist = pairs = 0
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        a = ids[lo:hi]
        follows = (a[1:] == a[:-1] + 1) & (catalog.track_album[a[1:]] == catalog.track_album[a[:-1]])
        next_in_album += int(follows.sum())
        same_artist += int(np.sum(catalog.track_artist[a[1:]] == catalog.track_artist[a[:-1]]))
        pairs += len(a) - 1
    assert next_in_album / pairs > 0.08  # songs tend to be followed by the next song of their album
    assert same_artist / pairs > 0.2  # artist runs


def test_catalog_structure():
    cat = SyntheticCatalog.build(3000, seed=1)
    assert cat.n_tracks == 3000 and len(cat.track_uris) == len(set(cat.track_uris)) == 3000
    assert set(np.unique(cat.track_genre).tolist()) == set(range(len(GENRES)))
    assert 15 <= len(GENRES) <= 25
    assert np.all(np.diff(cat.track_album) >= 0) and np.all(np.diff(cat.track_artist) >= 0)
    assert np.array_equal(cat.album_artist[cat.track_album], cat.track_artist)
    assert (cat.artist_genre2 >= 0).any()  # a few cross-genre artists
    assert np.allclose(np.bincount(cat.track_genre, weights=cat.track_weight), 1.0)
    with pytest.raises(InputError, match="at least"):
        SyntheticCatalog.build(10)


def _cli(args):
    from segue.cli import app  # registers every command

    return CliRunner().invoke(app, args)


def test_cli(tmp_path):
    result = _cli(["synth", "--playlists", "1500", "--out", str(tmp_path / "d"), "--seed", "2",
                                      "--tracks-approx", "2000"])
    assert result.exit_code == 0, result.output
    assert "2 files" in result.output and "1,500 playlists" in result.output
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [".segue-synth.json", "mpd.slice.0-999.json",
                                                                  "mpd.slice.1000-1499.json"]
    bad = _cli(["synth", "--playlists", "10", "--out", str(tmp_path / "e"), "--tracks-approx", "5"])
    assert bad.exit_code == 1 and "tracks-approx" in bad.output
