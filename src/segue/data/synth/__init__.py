"""A synthetic playlist generator that writes the exact Million Playlist Dataset (MPD) slice format.

segue's built-in default data. The real MPD cannot be shipped, so this package makes playlists that look and
behave like it, with structure a recommender can learn and a person can recognise:

* **Genres** (:mod:`.genres`). :data:`GENRES` lists 22 scenes (country, rap, christmas, workout, rock, worship,
  chill, ...). Every artist belongs to one genre (about 6% also to a second one: cross-genre artists), and so do
  its albums and tracks. Each genre has typical playlist titles ("country", "Country Roads", "christmas 🎄",
  "gym"), flavour words for song and album names, an artist-naming style and a typical song length. About a
  quarter of titles are generic ("my playlist", "summer 2017", "jams", "feels", "lit").
* **Names** (:mod:`.names`): made-up word-list combinations for artists, songs, albums and playlist titles
  (no real artists).
* **Catalogue** (:mod:`.catalogue`). Built once, up front, as numpy arrays (:class:`SyntheticCatalog`): artists
  with 1..n albums, albums that are singles (named after their song), EPs or full albums, tracks stored
  contiguously by artist, then album, then album track order.
* **Popularity.** Zipf-like: within a genre, an artist's weight is ``rank^-0.85`` times log-normal noise; an
  artist's albums split its weight log-normally; an album's tracks split the album's weight as
  ``(track_number)^-0.6`` times noise (openers and singles are the hits).
* **Playlists** (:mod:`.sampler`). Length from a log-normal/uniform mixture truncated to 5..250 (median ~49,
  mean ~66). Each playlist has a main genre (by genre popularity) and a second, usually neighbouring, genre;
  each segment of the playlist draws a seed track from the main genre (~78%), the second genre, or the global
  hits.
* **Runs and order.** A playlist is a series of segments (mean length ~2, some "album listener" playlists
  much longer). A segment either plays on through the seed's album in album order (so a track tends to be
  followed by the next track of its album: a sequential signal) or picks more songs by the same artist.
  Duplicates are redrawn once, so a track only occasionally repeats; every playlist has at least 3 artists
  and 2 albums (the MPD selection rule).
* **Files** (:mod:`.writer`): MPD playlist dicts (:func:`generate_playlists`) and slice files (:func:`synthesize`).

Determinism: the catalogue depends only on ``(seed, catalogue size)``; playlist ``pid`` depends only on
``(seed, catalogue size, pid // 1000)``, so the same pid comes out the same however the work is chunked.
The default catalogue size grows like the real MPD (2.26 distinct tracks per playlist) between 5,000 and
1,000,000 tracks (:func:`default_tracks`); pass ``tracks_approx`` to fix it.
"""

from segue.data.synth.catalogue import MIN_TRACKS, SyntheticCatalog, catalog_for, default_tracks
from segue.data.synth.genres import GENRES
from segue.data.synth.names import GENERIC_TITLES
from segue.data.synth.profiles import DEFAULT_PROFILE, PROFILES
from segue.data.synth.writer import SLICE_SIZE, SynthSummary, generate_playlists, slice_name, synthesize, write_slices

__all__ = [
    "GENERIC_TITLES",
    "GENRES",
    "DEFAULT_PROFILE",
    "PROFILES",
    "MIN_TRACKS",
    "SLICE_SIZE",
    "SynthSummary",
    "SyntheticCatalog",
    "catalog_for",
    "default_tracks",
    "generate_playlists",
    "slice_name",
    "synthesize",
    "write_slices",
]
