"""segue stats: the dataset figures on a hand-made store, and the plot."""

from __future__ import annotations

import pytest

from segue.data.stats import REAL_MPD, compute_stats, occurrence_stats, songs_by_playlists
from segue.data.store import build_store


def _track(n: int, artist: int) -> dict:
    return {"track_uri": f"spotify:track:t{n}", "track_name": f"Song {n}", "artist_uri": f"spotify:artist:a{artist}",
            "artist_name": f"Artist {artist}", "album_uri": f"spotify:album:b{n % 2}", "album_name": "Album"}


@pytest.fixture
def store(tmp_path):
    # t1 appears 4 times (once repeated), t2 3 times, t3 once, t4 once; artist 1 owns t1 and t3
    playlists = [
        {"pid": 0, "name": "Chill", "tracks": [_track(1, 1), _track(2, 2), _track(1, 1)]},
        {"pid": 1, "name": "chill ", "description": "relax", "tracks": [_track(1, 1), _track(3, 1)]},
        {"pid": 2, "name": "CHILL!!", "tracks": [_track(2, 2), _track(1, 1), _track(4, 3), _track(2, 2)]},
        {"pid": 3, "name": "Rock", "description": "", "tracks": [_track(4, 3), _track(1, 1)]},
        {"pid": 4, "name": "🔥🔥", "tracks": [_track(2, 2)]},
    ]
    return build_store(playlists, tmp_path / "store")


def test_figures_on_a_hand_made_store(store):
    stats = compute_stats(store, top=2)
    assert stats["playlists"] == 5 and stats["entries"] == 12
    assert (stats["tracks"], stats["artists"], stats["albums"]) == (4, 3, 2)
    assert stats["titles"] == 5 and stats["normalized_titles"] == 2  # chill, rock ("🔥🔥" normalises to nothing)
    assert stats["playlists_with_description"] == 1
    assert stats["length_mean"] == pytest.approx(12 / 5) and stats["length_median"] == 2
    assert (stats["length_min"], stats["length_max"]) == (1, 4)
    assert stats["tracks_seen_once"] == 1  # t3 (t4 appears twice)
    assert [(t["track_uri"], t["count"]) for t in stats["top_tracks"]] == [("spotify:track:t1", 5),
                                                                          ("spotify:track:t2", 4)]
    assert stats["top_tracks"][0]["artist_name"] == "Artist 1"
    assert [(a["artist_name"], a["count"]) for a in stats["top_artists"]] == [("Artist 1", 6), ("Artist 2", 4)]
    assert stats["top_titles"] == [{"title": "chill", "count": 3}, {"title": "rock", "count": 1}]


def test_how_songs_spread_over_playlists(store):
    figures = compute_stats(store)["occurrence"]
    # t1 in 4 playlists (5 entries), t2 in 3 (4 entries), t3 in 1, t4 in 2; 12 entries, 10 (playlist, song) pairs
    assert figures == {
        "playlists": 5, "songs": 4, "playlists_per_song": 2.5, "in_1": 0.25, "in_le_3": 0.75,
        "top_song_playlists": 4, "top_song_share": 0.8, "top1pct_entry_share": 5 / 12,
    }
    assert songs_by_playlists(store.indptr, store.indices).tolist() == [2, 3, 4, 4, 4]
    assert occurrence_stats([0], [])["songs"] == 0 and songs_by_playlists([0], []).tolist() == []


def test_top_zero_and_ties_are_stable(store):
    assert compute_stats(store, top=0)["top_tracks"] == []
    stats = compute_stats(store, top=10)
    assert len(stats["top_tracks"]) == 4 and len(stats["top_artists"]) == 3
    counts = [t["count"] for t in stats["top_tracks"]]
    assert counts == sorted(counts, reverse=True)


def test_cli_prints_tables_and_writes_a_png(store, tmp_path, cli):
    plot = tmp_path / "plots" / "mpd.png"
    result = cli("stats", store.path, "--plot", plot, "--top", "3")
    assert result.exit_code == 0, result.output
    for phrase in ("unique tracks", "unique normalised titles", "top tracks", "Artist 1", "chill",
                   "how songs spread over playlists", "this store", "80.0%", "real MPD", f"{REAL_MPD[2]['songs']:,}"):
        assert phrase in result.stdout, phrase
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in plot.parent.iterdir()] == ["mpd.png"]


def test_cli_stats_on_a_missing_store_is_a_clear_error(tmp_path, cli):
    result = cli("stats", tmp_path / "nowhere")
    assert result.exit_code == 1 and "notaseguestore" in "".join(result.stderr.split())  # rich may wrap it
