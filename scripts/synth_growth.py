"""How the generator's catalogue grows with the number of playlists, up to the MPD's 1M, beside the real MPD.

    python scripts/synth_growth.py                       # realistic profile, seed 0, up to 1,000,000 playlists
    python scripts/synth_growth.py --playlists 100000 --profile dense

Samples the playlists' songs exactly as ``segue synth`` does (same catalogue, seed and blocks) but writes no
JSON, so the MPD's size takes about two minutes on one core instead of a full ``segue synth``. At each size it
prints distinct songs, entries per song, songs in one playlist (entries, so a repeat within a playlist counts
twice: close to, not exactly, ``segue stats``'s column), and distinct albums and artists per distinct song; the
real MPD's official figures at 1M (2,262,292 songs, 734,684 albums, 295,860 artists, 66,346,428 entries) are
printed beside.
"""

from __future__ import annotations

import argparse

import numpy as np

from segue.data.synth.catalogue import catalog_for
from segue.data.synth.profiles import DEFAULT_PROFILE, PROFILES
from segue.data.synth.sampler import BLOCK, sample_block

REAL_1M = {"songs": 2_262_292, "entries": 66_346_428, "albums": 734_684, "artists": 295_860}
SIZES = (1_000, 10_000, 100_000, 250_000, 500_000, 1_000_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--playlists", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=list(PROFILES), default=DEFAULT_PROFILE)
    args = parser.parse_args(argv)
    cat = catalog_for(args.playlists, args.seed, profile=args.profile)
    counts = np.zeros(cat.n_tracks, dtype=np.int32)
    entries = 0
    marks = {s for s in SIZES if s < args.playlists} | {args.playlists}
    print("| playlists | distinct songs | entries per song | songs with 1 entry | albums per song | artists per song |")
    print("|---|---|---|---|---|---|")
    for block in range((args.playlists + BLOCK - 1) // BLOCK):
        n = min(BLOCK, args.playlists - block * BLOCK)
        sampled = sample_block(cat, args.seed, block, BLOCK)
        tracks = sampled.tracks[: sampled.offsets[n]]
        counts += np.bincount(tracks, minlength=cat.n_tracks).astype(np.int32)
        entries += len(tracks)
        done = block * BLOCK + n
        if done in marks:
            seen = np.flatnonzero(counts)
            albums = len(np.unique(cat.track_album[seen]))
            artists = len(np.unique(cat.track_artist[seen]))
            print(f"| {done:,} | {len(seen):,} | {entries / len(seen):.2f} | {np.mean(counts[seen] == 1):.1%} | "
                  f"{albums / len(seen):.3f} | {artists / len(seen):.3f} |", flush=True)
    real = REAL_1M
    print(f"| real MPD, 1,000,000 | {real['songs']:,} | {real['entries'] / real['songs']:.2f} | - | "
          f"{real['albums'] / real['songs']:.3f} | {real['artists'] / real['songs']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
