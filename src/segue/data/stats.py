"""Figures of a store, as Spotify's MPD stats script reports them, plus two plots.

Everything is computed from the store's arrays (CSR, per-track counts, the name column), vectorised:
the only Python loop runs over *distinct* titles, to normalise them.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segue.data.mpd import normalize_title
from segue.data.store import Store
from segue.io import atomic_path


def _top(counts: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest counts, largest first; ties by smaller index (stable)."""
    if k <= 0 or len(counts) == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(k, len(counts))
    candidates = np.argpartition(-counts, k - 1)[:k] if k < len(counts) else np.arange(len(counts))
    # a partition's boundary may cut a tie arbitrarily: take every index tied with the k-th count
    threshold = counts[candidates].min()
    candidates = np.flatnonzero(counts >= threshold)
    order = np.lexsort((candidates, -counts[candidates]))
    return candidates[order][:k]


def _title_counts(names: pa.ChunkedArray | pa.Array) -> tuple[int, list[str], np.ndarray]:
    """(distinct raw titles, distinct normalised titles, playlists per normalised title)."""
    encoded = pc.dictionary_encode(names)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks() if encoded.num_chunks else pa.array(
            [], pa.dictionary(pa.int32(), pa.string())
        )
    raw = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    valid = encoded.indices.is_valid().to_numpy(zero_copy_only=False)
    normalised_of_raw: dict[str, int] = {}
    raw_to_norm = np.fromiter(
        (normalised_of_raw.setdefault(normalize_title(name), len(normalised_of_raw)) for name in raw),
        dtype=np.int64,
        count=len(raw),
    )
    normalised = list(normalised_of_raw)
    counts = np.bincount(raw_to_norm[codes[valid].astype(np.int64)], minlength=len(normalised))
    return len(raw), normalised, counts

# The real MPD, as issue 17 measured it: the first N playlists of the official slices in pid order (a song is a
# distinct track URI); the last row is Spotify's official figures for the whole MPD (only the catalogue size).
REAL_MPD: list[dict] = [
    {"playlists": 1_000, "songs": 34_443, "playlists_per_song": 1.94, "in_1": 0.727, "in_le_3": 0.897,
     "top_song_playlists": 52, "top_song_share": 0.052, "top1pct_entry_share": 0.109},
    {"playlists": 5_000, "songs": 108_870, "playlists_per_song": 3.03, "in_1": 0.669, "in_le_3": 0.855,
     "top_song_playlists": 229, "top_song_share": 0.046, "top1pct_entry_share": 0.209},
    {"playlists": 10_000, "songs": 170_089, "playlists_per_song": 3.86, "in_1": 0.640, "in_le_3": 0.835,
     "top_song_playlists": 463, "top_song_share": 0.046, "top1pct_entry_share": 0.269},
    {"playlists": 15_000, "songs": 218_129, "playlists_per_song": 4.52, "in_1": 0.624, "in_le_3": 0.822,
     "top_song_playlists": 686, "top_song_share": 0.046, "top1pct_entry_share": 0.309},
    {"playlists": 1_000_000, "songs": 2_262_292, "playlists_per_song": None, "in_1": None, "in_le_3": None,
     "top_song_playlists": None, "top_song_share": None, "top1pct_entry_share": None},
]
REAL_MPD_LENGTH_MEAN, REAL_MPD_LENGTH_MEDIAN = 66.3, 50
OCCURRENCE_COLUMNS = {
    "playlists": "playlists",
    "songs": "distinct songs",
    "playlists_per_song": "playlists per song",
    "in_1": "songs in 1 playlist",
    "in_le_3": "songs in <= 3",
    "top_song_share": "top song in (of playlists)",
    "top1pct_entry_share": "top 1% songs hold (entries)",
}


def occurrence_stats(indptr: np.ndarray, indices: np.ndarray) -> dict:
    """How songs spread over playlists: the columns of :data:`REAL_MPD`, from CSR arrays (playlists x songs).

    ``playlists_per_song`` counts distinct playlists (a repeat within a playlist counts once); the top song's
    share is of playlists; the top 1% of songs (by entries, at least one song) hold ``top1pct_entry_share`` of
    all entries (repeats included).
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    n_playlists = len(indptr) - 1
    if n_playlists < 1 or len(indices) == 0:
        return {"playlists": n_playlists, "songs": 0, "playlists_per_song": 0.0, "in_1": 0.0, "in_le_3": 0.0,
                "top_song_playlists": 0, "top_song_share": 0.0, "top1pct_entry_share": 0.0}
    _, songs = np.unique(indices, return_inverse=True)
    n_songs = int(songs.max()) + 1
    row = np.repeat(np.arange(n_playlists, dtype=np.int64), np.diff(indptr))
    pairs = np.unique(row * n_songs + songs)  # distinct (playlist, song)
    in_playlists = np.bincount(pairs % n_songs, minlength=n_songs)
    entries = np.sort(np.bincount(songs, minlength=n_songs))[::-1]
    top = max(1, int(round(0.01 * n_songs)))
    return {
        "playlists": n_playlists,
        "songs": n_songs,
        "playlists_per_song": float(len(pairs) / n_songs),
        "in_1": float(np.mean(in_playlists == 1)),
        "in_le_3": float(np.mean(in_playlists <= 3)),
        "top_song_playlists": int(in_playlists.max()),
        "top_song_share": float(in_playlists.max() / n_playlists),
        "top1pct_entry_share": float(entries[:top].sum() / len(indices)),
    }


def songs_by_playlists(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Distinct songs among the first ``n`` playlists, for n = 1 .. number of playlists (the catalogue's growth)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    n_playlists = len(indptr) - 1
    if n_playlists < 1:
        return np.zeros(0, dtype=np.int64)
    _, first_entry = np.unique(np.asarray(indices), return_index=True)
    first_row = np.searchsorted(indptr, first_entry, side="right") - 1
    return np.cumsum(np.bincount(first_row, minlength=n_playlists))


def compute_stats(store: Store, top: int = 20) -> dict:
    """Dataset figures: sizes, title counts, length summary and the top tracks, artists and titles.

    Counts of tracks and artists are playlist entries (repeats included), as in Spotify's stats script;
    titles count playlists, by normalised title (:func:`~segue.data.mpd.normalize_title`). Titles that
    normalise to nothing (emoji only, say) are left out of the normalised figures.
    """
    lengths = store.playlist_lengths()
    track_count = store.track_count
    track_artist = store.track_artist
    meta = store.playlist_meta
    n_raw, normalised, title_counts = _title_counts(meta.column("name"))
    nonempty = np.array([bool(t) for t in normalised], dtype=bool)
    title_counts = np.where(nonempty, title_counts, 0)
    description = meta.column("description")
    with_description = int(pc.sum(pc.greater(pc.utf8_length(description), 0)).as_py() or 0)

    known = track_artist >= 0
    artist_count = np.bincount(track_artist[known], weights=track_count[known], minlength=store.n_artists)
    artist_count = artist_count.astype(np.int64)

    tracks = store.tracks
    top_track_ids = _top(track_count, top)
    top_tracks = [
        {
            "track_id": int(i),
            "track_uri": row["track_uri"],
            "track_name": row["track_name"],
            "artist_name": row["artist_name"],
            "count": int(track_count[i]),
        }
        for i, row in zip(top_track_ids.tolist(), tracks.take(pa.array(top_track_ids)).to_pylist())
    ]
    top_artist_ids = _top(artist_count, top)
    # a representative track row per artist (its first track) gives the artist's URI and name
    artist_ids_known = np.flatnonzero(known)
    _, first_of_artist = np.unique(track_artist[known], return_index=True)
    first_rows = artist_ids_known[first_of_artist]
    artist_rows = tracks.select(["artist_uri", "artist_name"]).take(pa.array(first_rows[top_artist_ids])).to_pylist()
    top_artists = [
        {"artist_id": int(a), "artist_uri": row["artist_uri"], "artist_name": row["artist_name"],
         "count": int(artist_count[a])}
        for a, row in zip(top_artist_ids.tolist(), artist_rows)
    ]
    top_titles = [
        {"title": normalised[i], "count": int(title_counts[i])}
        for i in _top(title_counts, top).tolist()
        if title_counts[i] > 0
    ]
    return {
        "playlists": store.n_playlists,
        "entries": int(lengths.sum()),
        "tracks": store.n_tracks,
        "albums": store.n_albums,
        "artists": store.n_artists,
        "titles": n_raw,
        "normalized_titles": int(nonempty.sum()),
        "playlists_with_description": with_description,
        "length_mean": float(lengths.mean()) if len(lengths) else 0.0,
        "length_median": float(np.median(lengths)) if len(lengths) else 0.0,
        "length_min": int(lengths.min()) if len(lengths) else 0,
        "length_max": int(lengths.max()) if len(lengths) else 0,
        "tracks_seen_once": int((track_count == 1).sum()),
        "occurrence": occurrence_stats(store.indptr, store.indices),
        "top_tracks": top_tracks,
        "top_artists": top_artists,
        "top_titles": top_titles,
    }


def plot_stats(store: Store, path: str | os.PathLike) -> None:
    """Write a PNG, atomically: the playlist-length histogram, the track-popularity curve (log-log), and the
    distinct songs of the first n playlists against the real MPD's (:data:`REAL_MPD`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = store.playlist_lengths()
    popularity = np.sort(store.track_count)[::-1]
    fig, (left, right, growth) = plt.subplots(1, 3, figsize=(16, 4.2))
    if len(lengths):
        left.hist(lengths, bins=np.arange(0, lengths.max() + 6, 5), color="#3b6ea5")
        left.axvline(lengths.mean(), color="#c44e52", linestyle="--", label=f"mean {lengths.mean():.1f}")
        left.axvline(np.median(lengths), color="#55a868", linestyle=":", label=f"median {np.median(lengths):.0f}")
        left.legend()
    left.set_xlabel("tracks per playlist")
    left.set_ylabel("playlists")
    left.set_title(f"Playlist length ({store.n_playlists:,} playlists)")
    popularity = popularity[popularity > 0]
    if len(popularity):
        right.loglog(np.arange(1, len(popularity) + 1), popularity, color="#3b6ea5")
    right.set_xlabel("track rank")
    right.set_ylabel("playlist entries")
    right.set_title(f"Track popularity ({store.n_tracks:,} tracks)")
    right.grid(True, which="major", alpha=0.3)
    songs = songs_by_playlists(store.indptr, store.indices)
    if len(songs):
        at = np.unique(np.geomspace(1, len(songs), num=200).astype(np.int64))
        growth.loglog(at, songs[at - 1], color="#3b6ea5", label="this store")
    real = [row for row in REAL_MPD if row["songs"]]
    growth.loglog([row["playlists"] for row in real], [row["songs"] for row in real], "o", color="#c44e52",
                  label="real MPD")
    growth.set_xlabel("playlists (first n)")
    growth.set_ylabel("distinct songs")
    growth.set_title("Catalogue growth")
    growth.grid(True, which="major", alpha=0.3)
    growth.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)

