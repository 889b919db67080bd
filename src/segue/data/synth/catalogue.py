"""The synthetic catalogue: artists, albums and tracks as numpy arrays, with popularity-weighted sampling."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from segue.data.synth.genres import GENRE_TABLE, GENRES, N_GENRES, genre_neighbours, playlist_share
from segue.data.synth.names import IdDraws, album_names_for, artist_names_for, spotify_uris, track_names_for
from segue.data.synth.profiles import DEFAULT_PROFILE, Profile, get_profile
from segue.errors import InputError

logger = logging.getLogger(__name__)

MIN_TRACKS = 1000
MAX_DEFAULT_TRACKS = 1_000_000
MIN_DEFAULT_TRACKS = 5000
TRACKS_PER_PLAYLIST = 2.26  # real MPD: 2,262,292 unique tracks for 1,000,000 playlists


def default_tracks(n_playlists: int, profile: str | Profile = DEFAULT_PROFILE) -> int:
    """The default catalogue size.

    ``realistic``: a fixed world whatever the number of playlists, so that a data set of any size is a prefix of
    one world, as the real MPD's first playlists are. ``dense``: 2.26 tracks per playlist like the real MPD's
    average, within [5,000, 1,000,000].
    """
    world = get_profile(profile).world_tracks
    if world is not None:
        return world
    return int(min(MAX_DEFAULT_TRACKS, max(MIN_DEFAULT_TRACKS, round(TRACKS_PER_PLAYLIST * n_playlists))))


def _search(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``np.searchsorted(..., side="right")``, with the queries sorted first: on a catalogue of millions of songs
    sorted queries walk the array in order instead of missing the cache on every one (about 2x faster here)."""
    order = np.argsort(queries)
    out = np.empty(len(queries), dtype=np.int64)
    out[order] = np.searchsorted(sorted_values, queries[order], side="right")
    return out


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
    names: ListNames | IdNames
    profile: Profile

    @property
    def n_tracks(self) -> int:
        return len(self.track_artist)

    @property
    def n_artists(self) -> int:
        return len(self.artist_genre)

    @property
    def n_albums(self) -> int:
        return len(self.album_artist)

    def describe(self, track_ids: np.ndarray) -> tuple[list[str], ...]:
        """(track URI, track name, artist URI, artist name, album URI, album name) lists, one item per id."""
        track_ids = np.asarray(track_ids, dtype=np.int64)
        artists, artist_of = np.unique(self.track_artist[track_ids], return_inverse=True)
        albums, album_of = np.unique(self.track_album[track_ids], return_inverse=True)
        track_uris, track_names = self.names.tracks(track_ids)
        artist_uris, artist_names = self.names.artists(artists)
        album_uris, album_names = self.names.albums(albums)
        a, b = artist_of.tolist(), album_of.tolist()
        return (track_uris, track_names, [artist_uris[i] for i in a], [artist_names[i] for i in a],
                [album_uris[i] for i in b], [album_names[i] for i in b])

    @cached_property
    def track_uris(self) -> list[str]:
        """Every track's URI, for tests and diagnostics (a realistic catalogue makes them on first use: seconds)."""
        return self.names.tracks(np.arange(self.n_tracks))[0]

    @classmethod
    def build(cls, n_tracks: int, seed: int = 0, profile: str | Profile = DEFAULT_PROFILE) -> SyntheticCatalog:
        """Build a catalogue of exactly ``n_tracks`` tracks, deterministic in ``(n_tracks, seed, profile)``."""
        if n_tracks < MIN_TRACKS:
            raise InputError(
                f"A synthetic catalogue needs at least {MIN_TRACKS:,} tracks (got {n_tracks:,}); "
                f"pass --tracks-approx {MIN_TRACKS} or more."
            )
        return _build_catalog(int(n_tracks), int(seed), get_profile(profile))

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
        return _cdf((share * self.track_weight) ** self.profile.hits_power)

    @cached_property
    def _weight_cumsum(self) -> np.ndarray:
        return np.cumsum(self.track_weight, dtype=np.float64)

    def sample_genre(self, rng: np.random.Generator, genre: int, n: int) -> np.ndarray:
        ids, cdf = self._pools[genre]
        return ids[np.minimum(_search(cdf, rng.random(n)), len(ids) - 1)]

    def sample_genre_uniform(self, rng: np.random.Generator, genre: int, n: int) -> np.ndarray:
        ids = self._pools[genre][0]
        return ids[rng.integers(0, len(ids), n)]

    def sample_hits(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(_search(self._hits, rng.random(n)), self.n_tracks - 1)

    def sample_by_artist(self, rng: np.random.Generator, artists: np.ndarray) -> np.ndarray:
        """One popularity-weighted track of each given artist (an artist's tracks are contiguous)."""
        start = self.artist_start[artists]
        end = self.artist_start[artists + 1]
        csum = self._weight_cumsum
        lo = np.where(start > 0, csum[np.maximum(start - 1, 0)], 0.0)
        hi = csum[end - 1]
        picks = _search(csum, lo + rng.random(len(artists)) * (hi - lo))
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


def _build_catalog(n_tracks: int, seed: int, profile: Profile) -> SyntheticCatalog:
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 0xCA7A])
    share = playlist_share()
    catalogue_share = np.sqrt(share) / np.sqrt(share).sum()  # niche genres get relatively more catalogue

    # artists -> albums -> tracks; albums: singles, EPs (3-6 songs) and full albums (8-16)
    singles, eps = profile.single_share, profile.single_share + profile.ep_share
    mean_album = singles + profile.ep_share * 4.5 + (1.0 - eps) * 12
    n_artists = int(n_tracks / (2.5 * mean_album) * 1.3) + 50
    while True:
        albums_per_artist = rng.geometric(profile.albums_p, size=n_artists)
        n_albums_total = int(albums_per_artist.sum())
        kind = rng.random(n_albums_total)
        sizes = np.where(kind < singles, 1, np.where(kind < eps, rng.integers(3, 7, n_albums_total),
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
    if profile.zipf_exponent is not None:
        weight = _zipf_by_rank(weight, track_genre, profile.zipf_exponent, profile.zipf_offset)
    weight /= np.bincount(track_genre, weights=weight, minlength=N_GENRES)[track_genre]

    artist_start = np.zeros(n_artists + 1, dtype=np.int64)
    np.cumsum(np.bincount(track_artist, minlength=n_artists), out=artist_start[1:])

    medians = np.array([row[6] for row in GENRE_TABLE], dtype=np.float64) * 1000
    duration = np.clip(medians[track_genre] * rng.lognormal(0.0, 0.22, n_tracks), 45_000, 900_000)
    duration = np.round(duration).astype(np.int64)

    genre_artists = [np.flatnonzero(artist_genre == g) for g in range(N_GENRES)]
    nth_album = np.arange(n_albums) - np.searchsorted(album_artist, album_artist)
    arrays = dict(
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
    )
    if profile.world_tracks is None:
        artist_names = artist_names_for(rng, artist_genre)
        track_names = track_names_for(rng, track_genre.astype(np.int64), track_artist,
                                      lambda ids: [artist_names[i] for i in ids.tolist()], genre_artists)
        album_names = album_names_for(
            rng, artist_genre[album_artist].astype(np.int64), sizes,
            [track_names[i] for i in album_start[:-1].tolist()],
            [artist_names[a] for a in album_artist.tolist()], nth_album,
        )
        names = ListNames(spotify_uris(rng, "track", n_tracks), track_names, spotify_uris(rng, "artist", n_artists),
                          artist_names, spotify_uris(rng, "album", n_albums), album_names)
    else:
        names = IdNames(seed, track_genre, track_artist, artist_genre, album_artist, album_start, nth_album,
                        genre_artists)
    cat = SyntheticCatalog(seed=seed, **arrays, names=names, profile=profile)
    logger.info("synthetic catalogue: %d tracks, %d albums, %d artists in %.1fs",
                n_tracks, n_albums, n_artists, time.perf_counter() - t0)
    return cat


class ListNames:
    """Names made up front, for the whole catalogue (the dense profile)."""

    def __init__(self, track_uris, track_names, artist_uris, artist_names, album_uris, album_names):
        self._tracks = (track_uris, track_names)
        self._artists = (artist_uris, artist_names)
        self._albums = (album_uris, album_names)

    @staticmethod
    def _take(pair, ids) -> tuple[list[str], list[str]]:
        uris, names = pair
        ids = np.asarray(ids).tolist()
        return [uris[i] for i in ids], [names[i] for i in ids]

    def tracks(self, ids):
        return self._take(self._tracks, ids)

    def artists(self, ids):
        return self._take(self._artists, ids)

    def albums(self, ids):
        return self._take(self._albums, ids)


class IdNames:
    """Names made on demand from ids (:class:`IdDraws`), for a catalogue too large to name up front.

    A name depends only on the seed and the id, so a block of playlists names just the songs, albums and artists
    it uses, and the same song gets the same name in every block. Artists and albums recur from block to block
    and are kept once named (at most a few hundred MB for the whole world); songs are named afresh.
    """

    def __init__(self, seed, track_genre, track_artist, artist_genre, album_artist, album_start, nth_album,
                 genre_artists):
        self._seed = seed
        self._track_genre, self._track_artist = track_genre.astype(np.int64), track_artist
        self._artist_genre = artist_genre
        self._album_artist, self._album_start, self._nth_album = album_artist, album_start, nth_album
        self._album_genre = artist_genre[album_artist].astype(np.int64)
        self._genre_artists = genre_artists
        self._artist_cache: dict[int, tuple[str, str]] = {}
        self._album_cache: dict[int, tuple[str, str]] = {}

    @staticmethod
    def _cached(cache: dict, ids: np.ndarray, make) -> list:
        ids_list = np.asarray(ids, dtype=np.int64).tolist()
        missing = sorted({i for i in ids_list if i not in cache})
        if missing:
            cache.update(zip(missing, make(np.array(missing, dtype=np.int64))))
        return [cache[i] for i in ids_list]

    def _make_artists(self, ids: np.ndarray) -> list[tuple[str, str]]:
        uris = spotify_uris(IdDraws(self._seed, 2, ids), "artist", len(ids))
        return list(zip(uris, artist_names_for(IdDraws(self._seed, 1, ids), self._artist_genre[ids])))

    def _artist_names(self, ids: np.ndarray) -> list[str]:
        return [name for _, name in self._cached(self._artist_cache, ids, self._make_artists)]

    def _track_names(self, ids: np.ndarray) -> list[str]:
        return track_names_for(IdDraws(self._seed, 3, ids), self._track_genre[ids], self._track_artist[ids],
                               self._artist_names, self._genre_artists)

    def _make_albums(self, ids: np.ndarray) -> list[tuple[str, str]]:
        sizes = self._album_start[ids + 1] - self._album_start[ids]
        names = album_names_for(
            IdDraws(self._seed, 5, ids), self._album_genre[ids], sizes, self._track_names(self._album_start[ids]),
            self._artist_names(self._album_artist[ids]), self._nth_album[ids],
        )
        return list(zip(spotify_uris(IdDraws(self._seed, 6, ids), "album", len(ids)), names))

    def tracks(self, ids):
        ids = np.asarray(ids, dtype=np.int64)
        return spotify_uris(IdDraws(self._seed, 4, ids), "track", len(ids)), self._track_names(ids)

    def artists(self, ids):
        pairs = self._cached(self._artist_cache, ids, self._make_artists)
        return [uri for uri, _ in pairs], [name for _, name in pairs]

    def albums(self, ids):
        pairs = self._cached(self._album_cache, ids, self._make_albums)
        return [uri for uri, _ in pairs], [name for _, name in pairs]


def _zipf_by_rank(weight: np.ndarray, genre: np.ndarray, exponent: float, offset: float) -> np.ndarray:
    """Within each genre, replace weights by ``(rank + offset) ** -exponent``, ranked by the given weights.

    The structured weights decide *which* songs are popular (hit artists, album openers); the power law decides
    *how* popular, so the catalogue's tail is as long as the real MPD's.
    """
    order = np.argsort(-weight)
    order = order[np.argsort(genre[order], kind="stable")]  # by genre, then by weight (lexsort is slower here)
    first = np.searchsorted(genre[order], np.arange(N_GENRES))
    rank = np.empty(len(weight), dtype=np.float64)
    rank[order] = np.arange(len(weight)) - first[genre[order]]
    return (rank + 1.0 + offset) ** -exponent


_CATALOG_CACHE: dict[tuple[int, int, str], SyntheticCatalog] = {}


def catalog_for(n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
                start_pid: int = 0, profile: str | Profile = DEFAULT_PROFILE) -> SyntheticCatalog:
    """The catalogue :func:`generate_playlists` uses for these arguments (cached: the last one built)."""
    profile = get_profile(profile)
    n_tracks = int(tracks_approx) if tracks_approx is not None else default_tracks(start_pid + n_playlists, profile)
    key = (n_tracks, int(seed), profile.name)
    cat = _CATALOG_CACHE.get(key)
    if cat is None:
        cat = SyntheticCatalog.build(n_tracks, seed, profile)
        _CATALOG_CACHE.clear()
        _CATALOG_CACHE[key] = cat
    return cat
