"""The synthetic catalogue: artists, albums and tracks as numpy arrays, with popularity-weighted sampling."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from segue.data.synth.genres import GENRE_TABLE, GENRES, N_GENRES, genre_neighbours, playlist_share
from segue.data.synth.names import album_names_for, artist_names_for, track_names_for
from segue.errors import InputError

logger = logging.getLogger(__name__)

MIN_TRACKS = 1000
MAX_DEFAULT_TRACKS = 1_000_000
MIN_DEFAULT_TRACKS = 5000
TRACKS_PER_PLAYLIST = 2.26  # real MPD: 2,262,292 unique tracks for 1,000,000 playlists
_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def default_tracks(n_playlists: int) -> int:
    """The default catalogue size: 2.26 tracks per playlist like the real MPD, within [5,000, 1,000,000]."""
    return int(min(MAX_DEFAULT_TRACKS, max(MIN_DEFAULT_TRACKS, round(TRACKS_PER_PLAYLIST * n_playlists))))


def _uris(rng: np.random.Generator, kind: str, n: int) -> list[str]:
    codes = _ALPHABET[rng.integers(0, 62, size=(n, 22), dtype=np.uint8)]
    ids = codes.view("S22").ravel().astype("U22").tolist()
    prefix = f"spotify:{kind}:"
    return [prefix + s for s in ids]


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    return cdf / cdf[-1]


@dataclass
class SyntheticCatalog:
    """The synthetic catalogue: tracks contiguous by artist, then album, then album track order.

    Arrays are per track unless named otherwise. ``track_genre`` is the artist's primary genre (an index into
    :data:`GENRES`); it exists for tests and diagnostics only, the product never relies on it.
    """

    seed: int
    track_artist: np.ndarray  # int32
    track_album: np.ndarray  # int32
    track_genre: np.ndarray  # int16
    track_number: np.ndarray  # int16, 0-based position in its album
    track_duration: np.ndarray  # int64 ms
    track_weight: np.ndarray  # float64 popularity (sums to 1 within each genre)
    artist_genre: np.ndarray  # int16
    artist_genre2: np.ndarray  # int16, -1 when the artist belongs to one genre only
    artist_start: np.ndarray  # int64, first track of each artist (length n_artists + 1)
    album_artist: np.ndarray  # int32
    album_start: np.ndarray  # int64, first track of each album (length n_albums + 1)
    track_uris: list[str]
    track_names: list[str]
    artist_uris: list[str]
    artist_names: list[str]
    album_uris: list[str]
    album_names: list[str]

    @property
    def n_tracks(self) -> int:
        return len(self.track_artist)

    @property
    def n_artists(self) -> int:
        return len(self.artist_genre)

    @property
    def n_albums(self) -> int:
        return len(self.album_artist)

    @classmethod
    def build(cls, n_tracks: int, seed: int = 0) -> SyntheticCatalog:
        """Build a catalogue of exactly ``n_tracks`` tracks, deterministic in ``(n_tracks, seed)``."""
        if n_tracks < MIN_TRACKS:
            raise InputError(
                f"A synthetic catalogue needs at least {MIN_TRACKS:,} tracks (got {n_tracks:,}); "
                f"pass --tracks-approx {MIN_TRACKS} or more."
            )
        return _build_catalog(int(n_tracks), int(seed))

    # ---- per-genre sampling pools -------------------------------------------------------------------------
    @cached_property
    def _pools(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per genre: (track ids, cdf) including cross-genre artists' tracks at half weight."""
        second = self.artist_genre2[self.track_artist]
        pools = []
        for g in range(N_GENRES):
            own = np.flatnonzero(self.track_genre == g)
            cross = np.flatnonzero(second == g)
            ids = np.concatenate([own, cross]).astype(np.int64)
            w = np.concatenate([self.track_weight[own], 0.5 * self.track_weight[cross]])
            pools.append((ids, _cdf(w)))
        return pools

    @cached_property
    def _hits(self) -> np.ndarray:
        """cdf over all tracks for "popular crossover" picks: genre share x weight, sharpened."""
        share = playlist_share()[self.track_genre]
        return _cdf((share * self.track_weight) ** 1.2)

    @cached_property
    def _weight_cumsum(self) -> np.ndarray:
        return np.cumsum(self.track_weight, dtype=np.float64)

    def sample_genre(self, rng: np.random.Generator, genre: int, n: int) -> np.ndarray:
        ids, cdf = self._pools[genre]
        return ids[np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(ids) - 1)]

    def sample_genre_uniform(self, rng: np.random.Generator, genre: int, n: int) -> np.ndarray:
        ids = self._pools[genre][0]
        return ids[rng.integers(0, len(ids), n)]

    def sample_hits(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self._hits, rng.random(n), side="right"), self.n_tracks - 1)

    def sample_by_artist(self, rng: np.random.Generator, artists: np.ndarray) -> np.ndarray:
        """One popularity-weighted track of each given artist (an artist's tracks are contiguous)."""
        start = self.artist_start[artists]
        end = self.artist_start[artists + 1]
        csum = self._weight_cumsum
        lo = np.where(start > 0, csum[np.maximum(start - 1, 0)], 0.0)
        hi = csum[end - 1]
        picks = np.searchsorted(csum, lo + rng.random(len(artists)) * (hi - lo), side="right")
        return np.clip(picks, start, end - 1)

    def genre_names(self, track_ids) -> list[str]:
        return [GENRES[g] for g in self.track_genre[np.asarray(track_ids)].tolist()]

    @cached_property
    def _uri_index(self) -> dict[str, int]:
        return {uri: i for i, uri in enumerate(self.track_uris)}

    def track_ids(self, uris) -> np.ndarray:
        """Catalogue rows of track URIs (-1 for unknown)."""
        index = self._uri_index
        return np.fromiter((index.get(u, -1) for u in uris), dtype=np.int64)

    def genres_of_uris(self, uris) -> np.ndarray:
        """Genre index of each track URI (-1 for URIs not in this catalogue)."""
        ids = self.track_ids(uris)
        out = np.full(len(ids), -1, dtype=np.int16)
        out[ids >= 0] = self.track_genre[ids[ids >= 0]]
        return out



def _build_catalog(n_tracks: int, seed: int) -> SyntheticCatalog:
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 0xCA7A])
    share = playlist_share()
    catalogue_share = np.sqrt(share) / np.sqrt(share).sum()  # niche genres get relatively more catalogue

    # artists -> albums -> tracks; albums: ~45% singles, ~20% EPs (3-6), ~35% full albums (8-16)
    mean_album = 0.45 * 1 + 0.2 * 4.5 + 0.35 * 12
    n_artists = int(n_tracks / (2.5 * mean_album) * 1.3) + 50
    while True:
        albums_per_artist = rng.geometric(0.4, size=n_artists)
        n_albums_total = int(albums_per_artist.sum())
        kind = rng.random(n_albums_total)
        sizes = np.where(kind < 0.45, 1, np.where(kind < 0.65, rng.integers(3, 7, n_albums_total),
                                                  rng.integers(8, 17, n_albums_total)))
        if sizes.sum() >= n_tracks:
            break
        n_artists *= 2
    album_end = np.cumsum(sizes)
    n_albums = int(np.searchsorted(album_end, n_tracks) + 1)
    sizes = sizes[:n_albums].copy()
    sizes[-1] -= int(album_end[n_albums - 1] - n_tracks)
    album_artist_full = np.repeat(np.arange(n_artists, dtype=np.int32), albums_per_artist)
    album_artist = album_artist_full[:n_albums]
    n_artists = int(album_artist[-1]) + 1

    # every genre gets artists; the rest by catalogue share, shuffled so genres interleave
    per_genre_min = max(3, min(20, n_artists // (4 * N_GENRES)))
    artist_genre = np.concatenate([
        np.repeat(np.arange(N_GENRES), per_genre_min),
        rng.choice(N_GENRES, size=max(0, n_artists - per_genre_min * N_GENRES), p=catalogue_share),
    ])[:n_artists]
    artist_genre = rng.permutation(artist_genre).astype(np.int16)
    neighbours = genre_neighbours()
    cross = rng.random(n_artists) < 0.06
    nb = neighbours[artist_genre, rng.integers(0, neighbours.shape[1], n_artists)]
    artist_genre2 = np.where(cross, nb, -1).astype(np.int16)

    # popularity: Zipf over a random rank within the genre, times noise
    rank = np.empty(n_artists, dtype=np.int64)
    order = np.lexsort((rng.random(n_artists), artist_genre))
    genre_first = np.searchsorted(artist_genre[order], np.arange(N_GENRES))
    rank[order] = np.arange(n_artists) - genre_first[artist_genre[order]]
    artist_w = (rank + 1.0) ** -0.85 * rng.lognormal(0.0, 0.8, n_artists)

    album_start = np.zeros(n_albums + 1, dtype=np.int64)
    np.cumsum(sizes, out=album_start[1:])
    track_album = np.repeat(np.arange(n_albums, dtype=np.int32), sizes)
    track_artist = album_artist[track_album]
    track_number = (np.arange(n_tracks) - album_start[track_album]).astype(np.int16)
    track_genre = artist_genre[track_artist]

    album_w = sizes**0.8 * rng.lognormal(0.0, 1.0, n_albums)  # full albums carry more weight
    album_w /= np.bincount(album_artist, weights=album_w, minlength=n_artists)[album_artist]
    track_w = (track_number + 1.0) ** -0.6 * rng.lognormal(0.0, 1.3, n_tracks)
    track_w /= np.bincount(track_album, weights=track_w, minlength=n_albums)[track_album]
    weight = artist_w[track_artist] * album_w[track_album] * track_w
    weight /= np.bincount(track_genre, weights=weight, minlength=N_GENRES)[track_genre]

    artist_start = np.zeros(n_artists + 1, dtype=np.int64)
    np.cumsum(np.bincount(track_artist, minlength=n_artists), out=artist_start[1:])

    medians = np.array([row[6] for row in GENRE_TABLE], dtype=np.float64) * 1000
    duration = np.clip(medians[track_genre] * rng.lognormal(0.0, 0.22, n_tracks), 45_000, 900_000)
    duration = np.round(duration).astype(np.int64)

    artist_names = artist_names_for(rng, artist_genre)
    genre_artists = [np.flatnonzero(artist_genre == g) for g in range(N_GENRES)]
    track_names = track_names_for(rng, track_genre.astype(np.int64), track_artist, artist_names, genre_artists)
    nth_album = np.arange(n_albums) - np.searchsorted(album_artist, album_artist)
    album_names = album_names_for(
        rng, artist_genre[album_artist].astype(np.int64), sizes,
        [track_names[i] for i in album_start[:-1].tolist()],
        [artist_names[a] for a in album_artist.tolist()], nth_album,
    )
    cat = SyntheticCatalog(
        seed=seed,
        track_artist=track_artist.astype(np.int32),
        track_album=track_album,
        track_genre=track_genre,
        track_number=track_number,
        track_duration=duration,
        track_weight=weight,
        artist_genre=artist_genre,
        artist_genre2=artist_genre2,
        artist_start=artist_start,
        album_artist=album_artist,
        album_start=album_start,
        track_uris=_uris(rng, "track", n_tracks),
        track_names=track_names,
        artist_uris=_uris(rng, "artist", n_artists),
        artist_names=artist_names,
        album_uris=_uris(rng, "album", n_albums),
        album_names=album_names,
    )
    logger.info("synthetic catalogue: %d tracks, %d albums, %d artists in %.1fs",
                n_tracks, n_albums, n_artists, time.perf_counter() - t0)
    return cat


_CATALOG_CACHE: dict[tuple[int, int], SyntheticCatalog] = {}


def catalog_for(n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
                start_pid: int = 0) -> SyntheticCatalog:
    """The catalogue :func:`generate_playlists` uses for these arguments (cached: the last one built)."""
    n_tracks = int(tracks_approx) if tracks_approx is not None else default_tracks(start_pid + n_playlists)
    key = (n_tracks, int(seed))
    cat = _CATALOG_CACHE.get(key)
    if cat is None:
        cat = SyntheticCatalog.build(n_tracks, seed)
        _CATALOG_CACHE.clear()
        _CATALOG_CACHE[key] = cat
    return cat
