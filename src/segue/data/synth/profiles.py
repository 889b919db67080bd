"""Generator profiles: ``realistic`` (the default, as sparse as the real MPD) and ``dense`` (segue's first generator).

The real MPD is sparse: of the songs in its first 10,000 playlists, 64% occur in a single playlist and the
catalogue keeps growing as playlists are added (170,089 distinct songs at 10,000 playlists, 2,262,292 at
1,000,000). ``realistic`` reproduces that growth and those occurrence shares (see :data:`REAL_MPD` in
:mod:`segue.data.stats` and ``tests/test_synth.py``): one fixed catalogue of MPD size whose songs have a
Zipf-like popularity, so a store of any size is a prefix of the same world, as the real table is.
``dense`` is the older generator: a catalogue of 2.26 songs per playlist with popularity concentrated on few
songs, so each song occurs in ~30 playlists; tests that need a strong signal on little data use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from segue.errors import InputError


@dataclass(frozen=True)
class Profile:
    name: str
    # catalogue size: a fixed world of this many songs, or None for 2.26 songs per playlist (the MPD's average)
    world_tracks: int | None
    # catalogue: albums per artist ~ Geometric(albums_p); album kinds: singles, EPs (3-6 songs), albums (8-16)
    albums_p: float
    single_share: float
    ep_share: float
    # popularity within a genre: None keeps the structured weights (artist x album x track, log-normal noise);
    # a number replaces them by (rank + zipf_offset) ** -zipf_exponent, ranked by those weights
    zipf_exponent: float | None
    zipf_offset: float
    # playlists: share of segments seeded from the global hits (uniform 0..hits_max per playlist), chance that
    # a segment plays on through its album, and the chance per position that a new segment starts
    hits_max: float
    hits_power: float  # hits are drawn by (genre share x popularity) ** hits_power: higher, fewer and bigger hits
    album_run: float
    new_segment: tuple[float, float]


DENSE = Profile("dense", world_tracks=None, albums_p=0.4, single_share=0.45, ep_share=0.2, zipf_exponent=None, zipf_offset=0.0,
                hits_max=0.15, hits_power=1.2, album_run=0.75, new_segment=(0.3, 0.9))
REALISTIC = Profile("realistic", world_tracks=2_600_000, albums_p=0.35, single_share=0.65, ep_share=0.2, zipf_exponent=1.40,
                    zipf_offset=70.0, hits_max=0.15, hits_power=2.2, album_run=0.5, new_segment=(0.5, 1.0))
PROFILES = {p.name: p for p in (REALISTIC, DENSE)}
DEFAULT_PROFILE = REALISTIC.name


def get_profile(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise InputError(
            f"Unknown generator profile {profile!r}; choose one of: {', '.join(PROFILES)}."
        ) from None
