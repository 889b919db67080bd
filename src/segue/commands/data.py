"""Data commands: ``segue ingest`` (MPD JSON -> store) and ``segue stats`` (figures and plots of a store)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from segue.commands._app import command, console, err_console
from segue.io import FILE_OUTPUT, claim_output

SHOWN_SKIPS = 10


@command(no_args_is_help=True)
def ingest(
    sources: list[Path] = typer.Argument(
        ..., help="MPD slice files, folders of slices, the official MPD zip, or challenge-set files.",
        show_default=False,
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The store folder to write (replaced only on success)."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid",
        help="Skip bad playlists and unreadable files (listed in the manifest) instead of stopping.",
    ),
    workers: int = typer.Option(None, "--workers", "-w", min=0, help="Parsing processes [default: one per core]."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    force: bool = typer.Option(False, "--force", help="Replace --out even when it is not a segue store."),
) -> None:
    """Read MPD-format JSON into a store: dense int32 ids for tracks, artists and albums, playlists in Parquet."""
    from segue.data.ingest import ingest as run_ingest, summary_line, warning_line

    store = run_ingest(sources, out, skip_invalid=skip_invalid, workers=workers, progress=progress, force=force)
    manifest = store.manifest
    for kind, count in manifest.get("warnings", {}).items():
        text = Text(warning_line(kind, count))
        err_console.print(Text("warning: ", style="yellow") + text, soft_wrap=True)
    skipped = manifest.get("skipped", [])
    for skip in skipped[:SHOWN_SKIPS]:
        err_console.print(Text("skipped: ", style="yellow") + Text(skip["reason"]), soft_wrap=True)
    if len(skipped) > SHOWN_SKIPS:
        more = f"... and {len(skipped) - SHOWN_SKIPS:,} more, all listed in {store.path / 'manifest.json'}"
        err_console.print(Text("skipped: ", style="yellow") + Text(more), soft_wrap=True)
    console.print(summary_line(store), highlight=False, soft_wrap=True)


@command(no_args_is_help=True)
def stats(
    store_path: Path = typer.Argument(..., metavar="STORE", help="A store written by `segue ingest`."),
    plot: Path = typer.Option(
        None, "--plot", help="Also write a PNG: length distribution, track popularity, distinct songs vs the real MPD."
    ),
    top: int = typer.Option(20, "--top", min=0, help="How many top tracks, artists and titles to list."),
) -> None:
    """Dataset figures as Spotify's MPD stats script reports them (sizes, titles, lengths, top tracks and artists),
    and how songs spread over playlists beside the real MPD's figures."""
    from segue.data.store import Store

    store = Store.open(store_path)
    # claimed before the work: a --plot path that cannot be written fails now, not after the figures
    with claim_output(plot, FILE_OUTPUT, inputs=[store.path], flag="--plot"):
        _print_stats(store, top, plot)


def _print_stats(store, top: int, plot: Path | None) -> None:
    from segue.data.stats import compute_stats, plot_stats

    figures = compute_stats(store, top=top)
    summary = Table(title=f"{store.path}", show_header=False)
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    rows = [
        ("playlists", figures["playlists"]),
        ("playlist entries (tracks incl. repeats)", figures["entries"]),
        ("unique tracks", figures["tracks"]),
        ("unique albums", figures["albums"]),
        ("unique artists", figures["artists"]),
        ("unique titles", figures["titles"]),
        ("unique normalised titles", figures["normalized_titles"]),
        ("playlists with a description", figures["playlists_with_description"]),
        ("tracks seen once", figures["tracks_seen_once"]),
    ]
    for name, value in rows:
        summary.add_row(name, f"{value:,}")
    summary.add_row("mean / median length", f"{figures['length_mean']:.1f} / {figures['length_median']:g}")
    summary.add_row("min / max length", f"{figures['length_min']} / {figures['length_max']}")
    console.print(summary)
    console.print(_occurrence_table(figures["occurrence"]))
    if top:
        console.print(_ranked("top tracks", ["track", "artist", "entries"],
                              [(t["track_name"] or t["track_uri"], t["artist_name"] or "", t["count"])
                               for t in figures["top_tracks"]]))
        artists = [(a["artist_name"] or a["artist_uri"] or "?", a["count"]) for a in figures["top_artists"]]
        console.print(_ranked("top artists", ["artist", "entries"], artists))
        console.print(_ranked("top normalised titles", ["title", "playlists"],
                              [(t["title"], t["count"]) for t in figures["top_titles"]]))
    if plot is not None:
        plot_stats(store, plot)
        console.print(f"wrote {plot}", highlight=False)


def _occurrence_table(figures: dict) -> Table:
    """The store's spread of songs over playlists beside the real MPD's first N playlists (issue 17's table)."""
    from segue.data.stats import OCCURRENCE_COLUMNS, REAL_MPD

    table = Table(title="how songs spread over playlists, beside the real MPD's first N")
    table.add_column("figure")
    table.add_column("this store", justify="right", style="bold")
    for row in REAL_MPD:
        n = row["playlists"]
        table.add_column(f"MPD {n // 1_000_000}M" if n >= 1_000_000 else f"MPD {n // 1000}k", justify="right")

    def cell(key: str, value) -> str:
        if value is None:
            return "-"
        if key in ("playlists", "songs"):
            return f"{value:,}"
        return f"{value:.2f}" if key == "playlists_per_song" else f"{100 * value:.1f}%"

    for key, label in OCCURRENCE_COLUMNS.items():
        table.add_row(label, cell(key, figures[key]), *(cell(key, row[key]) for row in REAL_MPD))
    return table


def _ranked(title: str, columns: list[str], rows: list[tuple]) -> Table:
    table = Table(title=title)
    table.add_column("#", justify="right")
    for name in columns[:-1]:
        table.add_column(name, overflow="fold")
    table.add_column(columns[-1], justify="right")
    for rank, row in enumerate(rows, start=1):
        table.add_row(str(rank), *(str(v) for v in row[:-1]), f"{row[-1]:,}")
    return table
