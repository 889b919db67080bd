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
        "top_tracks": top_tracks,
        "top_artists": top_artists,
        "top_titles": top_titles,
    }


def plot_stats(store: Store, path: str | os.PathLike) -> None:
    """Write a PNG: the playlist-length histogram and the track-popularity curve (log-log), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = store.playlist_lengths()
    popularity = np.sort(store.track_count)[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
