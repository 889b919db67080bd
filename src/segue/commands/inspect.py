"""`segue show` (the seed write-up's show_recommendations) and `segue genres` (its genre validation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from segue.commands._app import command, console
from segue.data.store import Store
from segue.errors import InputError, ModelError
from segue.evaluate.genre import (
    GenreRule,
    check_model_dirs,
    open_models,
    parse_keywords,
    report_markdown,
    run_genres,
)
from segue.evaluate.genre import footer_lines as genre_footer_lines
from segue.evaluate.genre import plot_png as genre_plot_png
from segue.evaluate.genre import table_rows as genre_table_rows
from segue.evaluate.show import LATER, SAME_ARTIST, SHOW_SEEDS, TARGET, find_playlist, show_playlist
from segue.evaluate.report import print_wide
from segue.io import FILE_OUTPUT, atomic_path, claim_outputs, write_json

MATCH_LABELS = {TARGET: f"[bold green]HIT (songs {SHOW_SEEDS + 1}–30)[/bold green]",
                LATER: "[green]hit (later in playlist)[/green]", SAME_ARTIST: "[cyan]same artist[/cyan]"}


def _name(info: dict | None) -> str:
    if not info:
        return "?"
    return f"{info.get('track_name') or info['track_uri']} — {info.get('artist_name') or '?'}"


@command("show")
def show_command(
    model_dir: Path = typer.Argument(..., help="Model directory (from `segue train`)."),
    pid: Optional[int] = typer.Option(None, "--pid", help="Playlist to show (looked up in --store or the model's store)."),
    title_contains: Optional[str] = typer.Option(
        None, "--title-contains", help="Instead of --pid: the first playlist of 30+ songs whose normalised title "
        "contains this text, preferring playlists the model was not trained on."),
    k: int = typer.Option(15, "-k", "--k", help="How many recommendations."),
    store_path: Optional[Path] = typer.Option(None, "--store", help="Store holding the playlist (default: the "
                                              "model's training store); songs are matched by URI."),
) -> None:
    """A playlist's title, first 20 songs, its songs 21-30, and the model's top-k for the first 20 as seeds."""
    if k <= 0:
        raise InputError(f"-k must be positive (got {k}).")
    if (pid is None) == (title_contains is None):
        raise InputError("pass exactly one of --pid or --title-contains.")
    lookup = Store.open(store_path) if store_path else None
    loaded = open_models([model_dir], lookup)[0]
    model, model_store = loaded.model, loaded.store
    if model_store is None:
        raise ModelError(f"{model_dir}: its training store is gone; pass a store with --store.")
    lookup = lookup or model_store
    row = lookup.row_of_pid(pid) if pid is not None else find_playlist(lookup, model_store, title_contains)
    shown = show_playlist(model, model_store, lookup, row, k)

    console.print(f"[bold]pid {shown.pid}[/bold]: {shown.title!r} — {len(shown.tracks)} songs; "
                  f"model {model.name} ({model_dir})")
    if shown.unknown_seeds:
        console.print(f"[yellow]{shown.unknown_seeds} seed song(s) are unknown to the model and were left out.[/yellow]")
    for heading, part, first in ((f"First {len(shown.seeds)} songs (the seeds)", shown.seeds, 1),
                                 (f"Songs {SHOW_SEEDS + 1}–{SHOW_SEEDS + len(shown.targets)} (the targets)",
                                  shown.targets, SHOW_SEEDS + 1)):
        console.print(f"\n[bold]{heading}[/bold]")
        for i, info in enumerate(lookup.track_info(part), start=first):
            console.print(f"  {i:>3}. {_name(info)}")

    table = Table(title=f"\nTop {len(shown.recommended)} recommendations given the first {len(shown.seeds)} songs")
    for column in ("rank", "song", "confidence", "match"):
        table.add_column(column, justify="right" if column in ("rank", "confidence") else "left")
    infos = model_store.track_info(shown.model_ids)
    for rank, (info, c, match) in enumerate(zip(infos, shown.confidence.tolist(), shown.match), start=1):
        table.add_row(str(rank), _name(info), f"{c:.2%}", MATCH_LABELS.get(match, ""))
    console.print(table)
    console.print(f"{shown.count(TARGET)} of {len(shown.targets)} targets (songs 21–30) and {shown.count(LATER)} "
                  f"later songs of the playlist recommended; {shown.count(SAME_ARTIST)} more by an artist of the "
                  "playlist.")


@command("genres")
def genres_command(
    model_dirs: list[Path] = typer.Argument(..., help="Model directories to validate (a popular model is "
                                            "fitted on the fly when none is given)."),
    store_path: Path = typer.Option(..., "--store", help="Store whose genre-titled playlists are evaluated "
                                    "(e.g. the full store of a split; held-out playlists are preferred)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write OUT.json, OUT.md and OUT.png."),
    keywords: Optional[str] = typer.Option(None, "--keywords", help="Comma-separated keyword groups, "
                                           "alternatives with '|' (default: country,rap|hip hop,christmas,"
                                           "rock,worship,workout,chill)."),
    max_playlists: int = typer.Option(200, "--max-playlists", help="Evaluated playlists per genre."),
    level: str = typer.Option("artist", "--level", help="What is labelled: artist or album (songs inherit the "
                              "label; works on sparse real playlists), or song (needs a big store)."),
    min_lift: float = typer.Option(3.0, "--min-lift", help="Label rule: the share's lower bound must reach this "
                                   "times the base rate."),
    min_support: Optional[int] = typer.Option(None, "--min-support", help="Label rule: playlists holding the "
                                              "artist/album/song (default: 2 to 5 by store size)."),
) -> None:
    """The write-up's validation: share of genre songs in the top 15 for genre-titled playlists, per model."""
    check_model_dirs(model_dirs)
    if max_playlists <= 0:
        raise InputError(f"--max-playlists must be positive (got {max_playlists}).")
    rule = GenreRule(level=level, min_lift=min_lift, min_support=min_support, max_playlists=max_playlists)
    report_files = [(Path(f"{report}.{ext}"), "--report") for ext in ("json", "md", "png")] if report else []
    with claim_outputs(report_files, FILE_OUTPUT, inputs=[store_path, *model_dirs]):  # checked before the work
        result = run_genres(model_dirs, Store.open(store_path), parse_keywords(keywords), rule)
        models = result["models"]
        print_wide(console, *genre_table_rows(result), title=f"Genre songs among the top {rule.k} (first {rule.seeds} "
                   "songs as seeds, no title; ± half the 95% CI, in points)")
        for line in genre_footer_lines(result):
            console.print(line, soft_wrap=True, markup=False, highlight=False)
        examples = Table(title=f"Example playlists: genre songs in the top {rule.k}")
        for column in ("genre", "pid", "title", *models):
            examples.add_column(column, justify="left" if column in ("genre", "title") else "right")
        for group, playlists in result["examples"].items():
            for ex in playlists:
                examples.add_row(group, str(ex["pid"]), ex["title"] or "",
                                 *[str(ex["genre_songs_in_top"][m]) for m in models])
        console.print(examples)
        if report is not None:
            json_path, md_path, png_path = (Path(f"{report}{ext}") for ext in (".json", ".md", ".png"))
            write_json(json_path, result)
            with atomic_path(md_path) as tmp:
                tmp.write_text(report_markdown(result), encoding="utf-8")
            genre_plot_png(result, png_path)
            console.print(f"wrote {json_path}, {md_path} and {png_path}")
