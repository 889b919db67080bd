"""The synthetic MPD generator: exact slice format, consistent counts, determinism and learnable structure."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from segue.data.mpd import normalize_title, parse_playlists
from segue.data.stats import REAL_MPD, REAL_MPD_LENGTH_MEAN, REAL_MPD_LENGTH_MEDIAN, occurrence_stats
from segue.data.synth import (
    GENRES,
    PROFILES,
    SyntheticCatalog,
    catalog_for,
    generate_playlists,
    write_slices,
)
from segue.data.synth.sampler import playlist_arrays
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


@pytest.fixture(scope="module", params=list(PROFILES))
def generated(request):
    """(playlists, catalogue, CSR of catalogue ids) of one profile: the ids are what the playlists list."""
    cat = catalog_for(N, seed=0, profile=request.param)
    indptr, ids = playlist_arrays(cat, 0, N)
    return list(generate_playlists(N, seed=0, catalog=cat)), cat, indptr, ids


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


def test_arrays_are_the_written_playlists(generated):
    playlists, cat, indptr, ids = generated
    assert [p["num_tracks"] for p in playlists] == np.diff(indptr).tolist()
    distinct, where = np.unique(ids, return_inverse=True)
    uris = cat.describe(distinct)[0]
    assert [t["track_uri"] for p in playlists for t in p["tracks"]] == [uris[i] for i in where.tolist()]


def test_playlists_follow_their_genre(generated):
    playlists, cat, indptr, ids = generated
    country, christmas = GENRES.index("country"), GENRES.index("christmas")
    for title, genre in (("country", country), ("christmas", christmas)):
        shares = [np.mean(cat.track_genre[ids[indptr[i] : indptr[i + 1]]] == genre)
                  for i, p in enumerate(playlists) if normalize_title(p["name"]) == title]
        assert len(shares) >= 10
        assert np.mean(shares) > 0.6, title
        assert np.median(shares) > 0.6, title


def test_popularity_runs_and_album_order(generated):
    playlists, cat, indptr, ids = generated
    counts = np.sort(np.bincount(ids))[::-1]
    counts = counts[counts > 0]
    top = counts[: len(counts) // 10].sum() / counts.sum()
    assert top > 0.3  # the top 10% of the songs played take a good share of all entries (Zipf-like)
    same_playlist = np.ones(len(ids) - 1, dtype=bool)
    same_playlist[indptr[1:-1] - 1] = False
    a, b = ids[:-1][same_playlist], ids[1:][same_playlist]
    follows = (b == a + 1) & (cat.track_album[b] == cat.track_album[a])
    # songs tend to be followed by the next song of their album (by chance: almost never); fewer when sparse
    assert follows.mean() > {"dense": 0.08, "realistic": 0.03}[cat.profile.name]
    same_artist = np.mean(cat.track_artist[b] == cat.track_artist[a])
    assert same_artist > {"dense": 0.2, "realistic": 0.07}[cat.profile.name]  # artist runs


@pytest.mark.parametrize("row", [r for r in REAL_MPD if r["playlists"] in (1_000, 10_000)],
                         ids=lambda r: f"{r['playlists']}")
def test_realistic_profile_spreads_songs_like_the_real_mpd(row):
    n = row["playlists"]
    indptr, ids = playlist_arrays(catalog_for(n, seed=0), 0, n)
    figures = occurrence_stats(indptr, ids)
    for column in ("songs", "playlists_per_song", "in_1", "in_le_3", "top_song_share", "top1pct_entry_share"):
        assert figures[column] == pytest.approx(row[column], rel=0.15), column
    lengths = np.diff(indptr)
    assert np.mean(lengths) == pytest.approx(REAL_MPD_LENGTH_MEAN, rel=0.15)
    assert np.median(lengths) == pytest.approx(REAL_MPD_LENGTH_MEDIAN, rel=0.15)
    assert lengths.min() >= 5 and lengths.max() <= 250


def test_dense_profile_is_dense():
    indptr, ids = playlist_arrays(catalog_for(N, seed=0, profile="dense"), 0, N)
    figures = occurrence_stats(indptr, ids)
    assert figures["playlists_per_song"] > 5 and figures["in_1"] < 0.4


def test_names_depend_only_on_the_id():
    cat = SyntheticCatalog.build(5000, seed=3, profile="realistic")
    some = np.array([4999, 17, 2500, 17])
    full = cat.describe(np.arange(cat.n_tracks))
    assert cat.describe(some) == tuple([column[i] for i in some.tolist()] for column in full)
    assert len(set(full[0])) == cat.n_tracks  # distinct track URIs
    other_seed = SyntheticCatalog.build(5000, seed=4, profile="realistic")
    assert other_seed.describe(some)[0] != cat.describe(some)[0]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_catalog_structure(profile):
    cat = SyntheticCatalog.build(3000, seed=1, profile=profile)
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
    dense = _cli(["synth", "--playlists", "20", "--out", str(tmp_path / "f"), "--profile", "dense"])
    assert dense.exit_code == 0 and "5,000-track dense catalogue" in dense.output
    bad = _cli(["synth", "--playlists", "10", "--out", str(tmp_path / "g"), "--profile", "sparse"])
    assert bad.exit_code == 1 and "realistic" in bad.output and "Traceback" not in bad.output
