"""The playlist sampler: lengths, genres and the track ids of a block of playlists, vectorised."""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from segue.data.synth.catalogue import SyntheticCatalog
from segue.data.synth.genres import GENRES, N_GENRES, genre_neighbours, playlist_share
from segue.data.synth.names import DESCRIPTIONS, playlist_titles

BLOCK = 1000  # playlists are drawn in blocks of this many (one MPD slice): a block depends only on its number
MIN_LENGTH, MAX_LENGTH = 5, 250
_DAY = 86400
_FIRST_DAY = 1262304000 // _DAY  # 2010-01-01
_LAST_DAY = 1509408000 // _DAY  # 2017-10-31


@dataclass
class Block:
    """A block of playlists as arrays (one value per playlist unless named otherwise)."""

    lengths: np.ndarray  # int64
    offsets: np.ndarray  # int64, length n + 1: playlist i holds tracks[offsets[i]:offsets[i + 1]]
    tracks: np.ndarray  # int64 catalogue rows, all playlists concatenated
    titles: list[str]
    descriptions: list[str | None]
    collaborative: np.ndarray  # bool
    modified_at: np.ndarray  # int64 unix seconds, whole days
    followers: np.ndarray  # int64
    edits: np.ndarray  # int64


def sample_block(cat: SyntheticCatalog, seed: int, block: int, n: int) -> Block:
    """Playlists ``block * n .. block * n + n - 1``: they depend only on the catalogue, the seed and the block."""
    rng = np.random.default_rng([seed, 0xB10C, block])
    share = playlist_share()
    lengths = sample_lengths(rng, n)
    g1 = rng.choice(N_GENRES, size=n, p=share)
    neighbours = genre_neighbours()
    g2 = np.where(rng.random(n) < 0.75, neighbours[g1, rng.integers(0, neighbours.shape[1], n)],
                  rng.choice(N_GENRES, size=n, p=share))
    tracks = block_tracks(cat, rng, g1, g2, lengths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    titles = playlist_titles(rng, g1)
    collaborative = rng.random(n) < 0.023
    days_back = np.floor(rng.exponential(550.0, n)).astype(np.int64) % (_LAST_DAY - _FIRST_DAY + 1)
    modified_at = (_LAST_DAY - days_back) * _DAY
    followers = np.minimum(rng.zipf(2.3, n), 100_000)
    edits = 1 + rng.poisson(lengths * 0.2)
    has_desc = (rng.random(n) < 0.019).tolist()
    desc_pick = rng.integers(0, len(DESCRIPTIONS), n).tolist()
    descriptions = [
        DESCRIPTIONS[d].format(g=GENRES[a], g2=GENRES[b]) if has else None
        for has, d, a, b in zip(has_desc, desc_pick, g1.tolist(), g2.tolist())
    ]
    return Block(lengths, offsets, tracks, titles, descriptions, collaborative, modified_at, followers, edits)


def sample_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Log-normal (median 46, sigma 0.75) + 8% uniform 80..250, truncated to 5..250: median ~49, mean ~66."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        m = 2 * (n - len(out)) + 16
        x = np.exp(rng.normal(np.log(46.0), 0.75, m))
        flat = rng.random(m) < 0.08
        x[flat] = rng.uniform(80, 251, int(flat.sum()))
        x = np.floor(x).astype(np.int64)
        out = np.concatenate([out, x[(x >= MIN_LENGTH) & (x <= MAX_LENGTH)]])
    return out[:n]


def distinct_per_row(row: np.ndarray, key: np.ndarray, n_rows: int, n_keys: int) -> np.ndarray:
    pairs = np.sort(row.astype(np.int64) * n_keys + key)  # sorting beats np.unique's hashing here
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[first] // n_keys, minlength=n_rows)


def block_tracks(cat: SyntheticCatalog, rng: np.random.Generator, g1: np.ndarray, g2: np.ndarray,
                  lengths: np.ndarray) -> np.ndarray:
    """The track ids of a block of playlists, concatenated (vectorised over all entries of the block)."""
    n = len(lengths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    row = np.repeat(np.arange(n), lengths)

    p_main = rng.beta(7.0, 2.0, n)
    profile = cat.profile
    p_hits = np.minimum(rng.uniform(0.0, profile.hits_max, n), 1.0 - p_main)
    q_new = rng.uniform(*profile.new_segment, n)  # chance a position starts a new segment
    q_new[rng.random(n) < 0.06] = 0.1  # "album listeners": long runs

    new = rng.random(total) < q_new[row]
    new[offsets[:-1]] = True
    seg = np.cumsum(new) - 1
    seg_first = np.flatnonzero(new)
    n_seg = len(seg_first)
    k = np.arange(total) - seg_first[seg]
    seg_row = row[seg_first]

    u = rng.random(n_seg)
    source = np.where(u < p_main[seg_row], 0, np.where(u < p_main[seg_row] + p_hits[seg_row], 2, 1))
    seg_genre = np.where(source == 1, g2[seg_row], g1[seg_row])
    seed_track = np.empty(n_seg, dtype=np.int64)
    hits = source == 2
    seed_track[hits] = cat.sample_hits(rng, int(hits.sum()))
    for g in np.unique(seg_genre[~hits]).tolist():
        mask = (seg_genre == g) & ~hits
        seed_track[mask] = cat.sample_genre(rng, g, int(mask.sum()))
    album_run = rng.random(n_seg) < profile.album_run

    first = seed_track[seg]
    candidate = first + k
    ok = (k == 0) | (album_run[seg] & (candidate < cat.album_start[cat.track_album[first] + 1]))
    tracks = np.where(ok, candidate, 0)
    other = ~ok
    tracks[other] = cat.sample_by_artist(rng, cat.track_artist[first[other]].astype(np.int64))

    # redraw repeats from the main genre, by popularity and then uniformly; a few stay (as in the MPD)
    for attempt in range(4):
        key = row.astype(np.int64) * cat.n_tracks + tracks
        order = np.argsort(key, kind="stable")
        dup = np.zeros(total, dtype=bool)
        dup[order[1:][key[order][1:] == key[order][:-1]]] = True
        if attempt == 0:
            keeps_repeats = rng.random(n) < 0.03  # these playlists keep their first-draw repeats
            dup &= ~keeps_repeats[row]
        if not dup.any():
            break
        _redraw_from_genre(cat, rng, tracks, dup, g1[row], uniform=attempt >= 2)

    # a few playlists add a song a second time (about 2%, as people do)
    again = np.flatnonzero(rng.random(n) < 0.02)
    if len(again):
        j = offsets[again] + 1 + (rng.random(len(again)) * (lengths[again] - 1)).astype(np.int64)
        i = offsets[again] + (rng.random(len(again)) * (j - offsets[again])).astype(np.int64)
        tracks[j] = tracks[i]

    # enforce the MPD selection rules: >= 3 artists and >= 2 albums
    for attempt in range(100):
        artists = cat.track_artist[tracks]
        albums = cat.track_album[tracks]
        bad = (distinct_per_row(row, artists, n, cat.n_artists) < 3) | (
            distinct_per_row(row, albums, n, cat.n_albums) < 2)
        if not bad.any():
            return tracks
        redo = bad[row]
        if attempt < 5:
            _redraw_from_genre(cat, rng, tracks, redo, g1[row])
        else:
            tracks[redo] = cat.sample_hits(rng, int(redo.sum()))
    raise RuntimeError("could not draw playlists with 3 artists and 2 albums; the catalogue is too small")


def _redraw_from_genre(cat, rng, tracks: np.ndarray, mask: np.ndarray, genre: np.ndarray,
                       uniform: bool = False) -> None:
    for g in np.unique(genre[mask]).tolist():
        m = mask & (genre == g)
        if uniform:
            tracks[m] = cat.sample_genre_uniform(rng, g, int(m.sum()))
        else:
            tracks[m] = cat.sample_genre(rng, g, int(m.sum()))


def playlist_arrays(cat: SyntheticCatalog, seed: int, n_playlists: int) -> tuple[np.ndarray, np.ndarray]:
    """Playlists ``0 .. n_playlists - 1`` as CSR arrays ``(indptr, catalogue track ids)``, without names or JSON.

    The same tracks as :func:`~segue.data.synth.generate_playlists` writes, for figures and tests at sizes
    where making the JSON would dominate.
    """
    n_blocks = -(-n_playlists // BLOCK)
    blocks = [sample_block(cat, seed, b, BLOCK) for b in range(n_blocks)]
    lengths = np.concatenate([b.lengths for b in blocks])[:n_playlists] if blocks else np.zeros(0, np.int64)
    indptr = np.zeros(n_playlists + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    tracks = np.concatenate([b.tracks for b in blocks])[: indptr[-1]] if blocks else np.zeros(0, np.int64)
    return indptr, tracks
