"""``segue synth``: write synthetic playlists in the official MPD slice format (segue's built-in data)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from segue.commands._app import command, console


@command("synth")
def synth(
    playlists: int = typer.Option(..., "--playlists", "-n", min=1, help="How many playlists to write."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the mpd.slice.*.json files (created)."),
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
) -> None:
    """Write synthetic MPD-format playlists (genres, popular songs, album runs, a long tail) into OUT.

    One file per 1,000 playlists (mpd.slice.<a>-<b>.json, the last may be partial), each written atomically; slice files already in OUT that this run does not write are removed.
    """
    from segue.data.synth import synthesize

    summary = synthesize(out, playlists, seed=seed, tracks_approx=tracks_approx,
                         progress=progress and sys.stderr.isatty(), profile=profile)
    console.print(summary.line(), highlight=False, soft_wrap=True)
