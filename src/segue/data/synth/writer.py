"""MPD playlist dicts and slice files from the sampler's blocks: ``generate_playlists`` and ``synthesize``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from segue.data.synth.catalogue import MIN_TRACKS, SyntheticCatalog, catalog_for
from segue.data.synth.profiles import DEFAULT_PROFILE, Profile
from segue.data.synth.sampler import BLOCK as SLICE_SIZE
from segue.data.synth.sampler import distinct_per_row, sample_block
from segue.errors import InputError
from segue.io import atomic_path
from segue.progress import progress_task

GENERATED_ON = "2018-01-01 00:00:00.000000"
_SLICE_NAME = re.compile(r"^mpd\.slice\.(\d+)-(\d+)\.json$")


def _block_playlists(cat: SyntheticCatalog, seed: int, block: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Playlists ``block * 1000 .. block * 1000 + 999`` as MPD dicts, with their track ids and offsets."""
    sampled = sample_block(cat, seed, block, SLICE_SIZE)
    n, tracks, offsets = SLICE_SIZE, sampled.tracks, sampled.offsets
    row = np.repeat(np.arange(n), sampled.lengths)
    num_artists = distinct_per_row(row, cat.track_artist[tracks], n, cat.n_artists).tolist()
    num_albums = distinct_per_row(row, cat.track_album[tracks], n, cat.n_albums).tolist()
    duration = np.bincount(row, weights=cat.track_duration[tracks], minlength=n).astype(np.int64).tolist()
    titles, descriptions = sampled.titles, sampled.descriptions
    collaborative, modified = sampled.collaborative.tolist(), sampled.modified_at.tolist()
    followers, edits = sampled.followers.tolist(), sampled.edits.tolist()

    # name each distinct song of the block once; entries index those lists
    distinct, local = np.unique(tracks, return_inverse=True)
    tu, tn, au, an, bu, bn = cat.describe(distinct)
    t_list = local.tolist()
    d_list = cat.track_duration[tracks].tolist()
    lengths_l = sampled.lengths.tolist()
    off = offsets.tolist()
    base = block * SLICE_SIZE
    out = []
    for i in range(n):
        lo, hi = off[i], off[i + 1]
        entries = [
            {
                "pos": j,
                "artist_name": an[t],
                "track_uri": tu[t],
                "artist_uri": au[t],
                "track_name": tn[t],
                "album_uri": bu[t],
                "duration_ms": d,
                "album_name": bn[t],
            }
            for j, (t, d) in enumerate(zip(t_list[lo:hi], d_list[lo:hi]))
        ]
        playlist = {
            "name": titles[i],
            "collaborative": "true" if collaborative[i] else "false",
            "pid": base + i,
            "modified_at": modified[i],
            "num_tracks": lengths_l[i],
            "num_albums": num_albums[i],
            "num_artists": num_artists[i],
            "num_followers": followers[i],
            "num_edits": edits[i],
            "duration_ms": duration[i],
        }
        if descriptions[i] is not None:
            playlist["description"] = descriptions[i]
        playlist["tracks"] = entries
        out.append(playlist)
    return out, tracks, offsets


def generate_playlists(n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
                       start_pid: int = 0, catalog: SyntheticCatalog | None = None,
                       profile: str | Profile = DEFAULT_PROFILE) -> Iterator[dict]:
    """Yield ``n_playlists`` synthetic MPD playlists with pids ``start_pid ..``, deterministically.

    ``profile`` is ``"realistic"`` (as sparse as the real MPD) or ``"dense"`` (each song in many playlists:
    a strong signal on little data); see :mod:`segue.data.synth.profiles`. The catalogue has ``tracks_approx``
    tracks, or :func:`default_tracks`; pass ``catalog`` (from :func:`catalog_for`) to reuse one (it carries its
    profile). A playlist depends only on the seed, the catalogue and its pid.
    """
    if n_playlists < 0 or start_pid < 0:
        raise InputError("The number of playlists and the first pid must not be negative.")
    if n_playlists == 0:
        return
    cat = catalog if catalog is not None else catalog_for(n_playlists, seed, tracks_approx, start_pid, profile)
    stop = start_pid + n_playlists
    for block in range(start_pid // SLICE_SIZE, (stop - 1) // SLICE_SIZE + 1):
        base = block * SLICE_SIZE
        playlists = _block_playlists(cat, seed, block)[0]
        yield from playlists[max(0, start_pid - base) : min(SLICE_SIZE, stop - base)]


def slice_name(start: int, end: int) -> str:
    return f"mpd.slice.{start}-{end}.json"


@dataclass
class SynthSummary:
    files: list[Path]
    n_playlists: int
    n_entries: int
    n_distinct_tracks: int
    n_catalog_tracks: int
    seconds: float
    profile: str
    removed: int = 0

    def line(self) -> str:
        return (
            f"wrote {len(self.files):,} files, {self.n_playlists:,} playlists, {self.n_entries:,} playlist tracks "
            f"({self.n_distinct_tracks:,} distinct of a {self.n_catalog_tracks:,}-track {self.profile} catalogue) "
            f"in {self.seconds:.1f}s"
            + (f"; removed {self.removed} stale slice file(s)" if self.removed else "")
        )


def synthesize(out_dir, n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
               progress: bool = False, profile: str | Profile = DEFAULT_PROFILE) -> SynthSummary:
    """Write ``n_playlists`` playlists as MPD slices into ``out_dir`` and return a summary.

    One file per 1,000 playlists (``mpd.slice.<a>-<b>.json``; the last may be partial), each written
    atomically. ``mpd.slice.*.json`` files already in ``out_dir`` that this run does not write are removed,
    so the directory holds exactly this data set.
    """
    if n_playlists < 1:
        raise InputError(f"--playlists must be at least 1 (got {n_playlists}).")
    if tracks_approx is not None and tracks_approx < MIN_TRACKS:
        raise InputError(f"--tracks-approx must be at least {MIN_TRACKS:,} (got {tracks_approx:,}).")
    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory; choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    cat = catalog_for(n_playlists, seed, tracks_approx, profile=profile)
    files: list[Path] = []
    seen = np.zeros(cat.n_tracks, dtype=bool)
    n_entries = 0
    n_blocks = (n_playlists + SLICE_SIZE - 1) // SLICE_SIZE
    info_extra = {"description": f"synthetic MPD-format data made by segue synth (seed {seed}, profile "
                                 f"{cat.profile.name}); not Spotify data"}
    with progress_task("synth", n_playlists, enabled=progress) as advance:
        for block in range(n_blocks):
            start = block * SLICE_SIZE
            end = min(start + SLICE_SIZE, n_playlists) - 1
            playlists, tracks, offsets = _block_playlists(cat, seed, block)
            playlists = playlists[: end - start + 1]
            tracks = tracks[: offsets[len(playlists)]]
            n_entries += len(tracks)
            seen[tracks] = True
            name = slice_name(start, end)
            doc = {"info": {"generated_on": GENERATED_ON, "slice": f"{start}-{end}", "version": "v1", **info_extra},
                   "playlists": playlists}
            path = out / name
            with atomic_path(path) as tmp:
                tmp.write_bytes(orjson.dumps(doc))
            files.append(path)
            advance(len(playlists))
    written = {p.name for p in files}
    removed = 0
    for stale in out.iterdir():
        if _SLICE_NAME.match(stale.name) and stale.name not in written and stale.is_file():
            stale.unlink()
            removed += 1
    return SynthSummary(files, n_playlists, n_entries, int(seen.sum()), cat.n_tracks,
                        time.perf_counter() - t0, cat.profile.name, removed)


def write_slices(out_dir, n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
                 progress: bool = False, profile: str | Profile = DEFAULT_PROFILE) -> list[Path]:
    """Write synthetic MPD slices into ``out_dir``; returns the slice paths in pid order."""
    return synthesize(out_dir, n_playlists, seed, tracks_approx, progress, profile).files
