"""`segue show` (the seed write-up's show_recommendations) and `segue genres` (its genre validation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from segue.commands._app import command, console
from segue.data.store import Store
from segue.data.mpd import normalize_title
from segue.errors import InputError, ModelError, NotFoundError
from segue.evaluate.genre import (
    GenreRule,
    check_model_dirs,
    map_ids,
    open_models,
    parse_keywords,
    report_markdown,
    run_genres,
    vocab_map,
)
from segue.io import FILE_OUTPUT, atomic_path, claim_outputs, write_json

SHOW_SEEDS = 20      # the write-up feeds songs 1-20 ...
SHOW_TARGETS = 10    # ... and its ten training sets target songs 21-30


def confidence(model, seeds: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The model's own confidence when it has one (meanvar: softmax probability), else the top-k scores
    shifted to be >= 0 and divided by their sum."""
    hook = getattr(model, "confidence", None)
    if callable(hook):
        return np.asarray(hook(seeds, ids), dtype=np.float64)
    finite = np.where(np.isfinite(scores), scores, np.nan).astype(np.float64)
    if np.all(np.isnan(finite)):
        return np.zeros(len(scores))
    shifted = finite - min(0.0, float(np.nanmin(finite)))
    total = float(np.nansum(shifted))
    return np.nan_to_num(shifted / total if total > 0 else shifted)


def _name(info: dict | None) -> str:
    if not info:
        return "?"
    return f"{info.get('track_name') or info['track_uri']} — {info.get('artist_name') or '?'}"


def find_playlist(lookup: Store, model_store: Store, text: str) -> int:
    """Row of the first playlist with 30+ songs whose normalised title contains ``text``; playlists
    absent from the model's training store (held out) come first."""
    needle = normalize_title(text)
    lengths = lookup.playlist_lengths()
    rows = [r for r, name in enumerate(lookup.names)
            if lengths[r] >= SHOW_SEEDS + SHOW_TARGETS and needle in normalize_title(name)]
    if not rows:
        raise NotFoundError(f"no playlist of {SHOW_SEEDS + SHOW_TARGETS}+ songs in {lookup.path} has a title "
                            f"containing {text!r}; pass --pid instead.")
    if model_store.path != lookup.path:
        trained = np.isin(lookup.pids[rows], model_store.pids)
        rows = [r for r, seen in zip(rows, trained) if not seen] + [r for r, seen in zip(rows, trained) if seen]
    return rows[0]


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
    lookup = Store.open(store_path) if store_path else None
    loaded = open_models([model_dir], lookup) if lookup else open_models([model_dir], None)
    model, model_store = loaded[0].model, loaded[0].store
    if model_store is None:
        raise ModelError(f"{model_dir}: its training store is gone; pass a store with --store.")
    lookup = lookup or model_store
    if (pid is None) == (title_contains is None):
        raise InputError("pass exactly one of --pid or --title-contains.")
    row = lookup.row_of_pid(pid) if pid is not None else find_playlist(lookup, model_store, title_contains)
    tracks = lookup.playlist_tracks(row)
    title = lookup.names[row]
    seeds, targets, rest = tracks[:SHOW_SEEDS], tracks[SHOW_SEEDS : SHOW_SEEDS + SHOW_TARGETS], tracks[SHOW_SEEDS:]
    to_model, from_model = vocab_map(lookup, model_store), vocab_map(model_store, lookup)
    model_seeds = map_ids(seeds, to_model)
    unknown = int((model_seeds < 0).sum())
    model_seeds = model_seeds[model_seeds >= 0]
    ids, scores = model.recommend([model_seeds], k=k, titles=[title])
    keep = ids[0] >= 0
    model_ids, scores = ids[0][keep], scores[0][keep]
    conf = confidence(model, model_seeds, model_ids, scores)
    rec = map_ids(model_ids, from_model)

    artists = lookup.track_artist
    playlist_artists = set(artists[tracks].tolist()) - {-1}
    console.print(f"[bold]pid {int(lookup.pids[row])}[/bold]: {title!r} — {len(tracks)} songs; model {model.name} ({model_dir})")
    if unknown:
        console.print(f"[yellow]{unknown} seed song(s) are unknown to the model and were left out.[/yellow]")
    for heading, part, first in ((f"First {len(seeds)} songs (the seeds)", seeds, 1),
                                 (f"Songs {SHOW_SEEDS + 1}–{SHOW_SEEDS + len(targets)} (the targets)", targets,
                                  SHOW_SEEDS + 1)):
        console.print(f"\n[bold]{heading}[/bold]")
        for i, info in enumerate(lookup.track_info(part), start=first):
            console.print(f"  {i:>3}. {_name(info)}")

    target_set, rest_set = set(targets.tolist()), set(rest.tolist())
    table = Table(title=f"\nTop {len(rec)} recommendations given the first {len(seeds)} songs")
    for column in ("rank", "song", "confidence", "match"):
        table.add_column(column, justify="right" if column in ("rank", "confidence") else "left")
    exact = later = same_artist = 0
    infos = model_store.track_info(model_ids)
    for rank, (tid, info, c) in enumerate(zip(rec.tolist(), infos, conf.tolist()), start=1):
        if tid in target_set:
            match, exact = "[bold green]HIT (songs 21–30)[/bold green]", exact + 1
        elif tid in rest_set:
            match, later = "[green]hit (later in playlist)[/green]", later + 1
        elif tid >= 0 and artists[tid] in playlist_artists:
            match, same_artist = "[cyan]same artist[/cyan]", same_artist + 1
        else:
            match = ""
        table.add_row(str(rank), _name(info), f"{c:.2%}", match)
    console.print(table)
    console.print(f"{exact} of {len(targets)} targets (songs 21–30) and {later} later songs of the playlist "
                  f"recommended; {same_artist} more by an artist of the playlist.")


@command("genres")
def genres_command(
    model_dirs: list[Path] = typer.Argument(..., help="Model directories to validate (a popular model is "
                                            "fitted on the fly when none is given)."),
    store_path: Path = typer.Option(..., "--store", help="Store whose genre-titled playlists are evaluated "
                                    "(e.g. the full store of a split; held-out playlists are preferred)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write OUT.json and OUT.md."),
    keywords: Optional[str] = typer.Option(None, "--keywords", help="Comma-separated keyword groups, "
                                           "alternatives with '|' (default: country,rap|hip hop,christmas,"
                                           "rock,worship,workout,chill)."),
    max_playlists: int = typer.Option(200, "--max-playlists", help="Evaluated playlists per genre."),
    min_lift: float = typer.Option(5.0, "--min-lift", help="Genre song rule: lift over the base rate."),
    min_support: int = typer.Option(5, "--min-support", help="Genre song rule: playlists holding the song."),
) -> None:
    """The write-up's validation: share of genre songs in the top 15 for genre-titled playlists, per model."""
    check_model_dirs(model_dirs)
    if max_playlists <= 0 or min_lift <= 0 or min_support <= 0:
        raise InputError("--max-playlists, --min-lift and --min-support must be positive.")
    rule = GenreRule(min_lift=min_lift, min_support=min_support, max_playlists=max_playlists)
    report_files = [(Path(f"{report}.{ext}"), "--report") for ext in ("json", "md")] if report else []
    with claim_outputs(report_files, FILE_OUTPUT, inputs=[store_path, *model_dirs]):  # checked before the work
        result = run_genres(model_dirs, Store.open(store_path), parse_keywords(keywords), rule)
    models = result["models"]
    table = Table(title=f"Genre songs among the top {rule.k} (first {rule.seeds} songs as seeds, no title)")
    for column in ("genre", "playlists", "genre songs", "playlists' own", *models):
        table.add_column(column, justify="left" if column == "genre" else "right")
    for group, e in result["genres"].items():
        if "recommended_share" not in e:
            table.add_row(group, "0", "–", "–", *["–"] * len(models))
            continue
        own = "–" if e["playlist_share"] is None else f"{e['playlist_share']:.1%}"
        table.add_row(group, str(e["evaluated"]), str(e["genre_songs"]), own,
                      *[f"{e['recommended_share'][m]:.1%}" for m in models])
    console.print(table)
    examples = Table(title=f"Example playlists: genre songs in the top {rule.k}")
    for column in ("genre", "pid", "title", *models):
        examples.add_column(column, justify="left" if column in ("genre", "title") else "right")
    for group, rows in result["examples"].items():
        for ex in rows:
            examples.add_row(group, str(ex["pid"]), ex["title"] or "",
                             *[str(ex["genre_songs_in_top"][m]) for m in models])
    console.print(examples)
    console.print(f"rule: {result['rule']}")
    if report is not None:
        json_path, md_path = Path(f"{report}.json"), Path(f"{report}.md")
        write_json(json_path, result)
        with atomic_path(md_path) as tmp:
            tmp.write_text(report_markdown(result), encoding="utf-8")
        console.print(f"wrote {json_path} and {md_path}")
