"""``segue synth``: write synthetic playlists in the official MPD slice format (segue's built-in data)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from segue.commands._app import command, console


@command("synth")
def synth(
    playlists: int = typer.Option(..., "--playlists", "-n", min=1, help="How many playlists to write."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the mpd.slice.*.json files (replaced whole)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same files."),
    profile: str = typer.Option(
        "realistic", "--profile",
        help="realistic: as sparse as the real MPD (most songs in 1-3 playlists); "
             "dense: each song in many playlists, a strong signal on little data.",
    ),
    tracks_approx: int | None = typer.Option(
        None,
        "--tracks-approx",
        help="Catalogue size in tracks (default: realistic 2,600,000, the real MPD's world; "
             "dense 2.26 per playlist within 5,000..1,000,000).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on a terminal."),
    force: bool = typer.Option(False, "--force", help="Replace --out even when it is not a `segue synth` folder."),
) -> None:
    """Write synthetic MPD-format playlists (genres, popular songs, album runs, a long tail) into OUT.

    One file per 1,000 playlists (mpd.slice.<a>-<b>.json, the last may be partial). OUT is replaced whole on
    success, and only when it is new, empty or an earlier `segue synth` folder (marked by .segue-synth.json).
    """
    from segue.data.synth import synthesize
    from segue.io import SYNTH_OUTPUT, atomic_dir, claim_output, write_json

    with claim_output(out, SYNTH_OUTPUT, force=force), atomic_dir(out) as tmp:
        summary = synthesize(tmp, playlists, seed=seed, tracks_approx=tracks_approx,
                             progress=progress and sys.stderr.isatty(), profile=profile)
        write_json(tmp / SYNTH_OUTPUT.marker, {"format": SYNTH_OUTPUT.value, "playlists": playlists, "seed": seed,
                                               "profile": profile, "tracks_approx": tracks_approx})
    console.print(summary.line(), highlight=False, soft_wrap=True)
