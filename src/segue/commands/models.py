"""`segue train` and `segue recommend`: fit a model on a store, and ask a model for recommendations."""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from segue.commands._app import command, console
from segue.config import apply_overrides
from segue.data.store import Store
from segue.errors import InputError, NotFoundError
from segue.io import MODEL_OUTPUT, claim_output, plural
from segue.models.base import available_models, get_model_class, open_model_and_store

DEVICES = ("auto", "cpu", "cuda")


def _progress_enabled(no_progress: bool) -> bool:
    return not no_progress and sys.stderr.isatty()


def peak_memory_bytes() -> int:
    """Peak resident memory of this process and its finished children (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(max(own, children)) * 1024


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def human_bytes(n: float) -> str:
    """Binary units, labelled as such (1 MiB = 1024 KiB)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def model_config(model: str, settings: list[str], device: str):
    """The model class and its config with ``--set`` and ``--device`` applied."""
    cls = get_model_class(model)
    config = apply_overrides(cls.Config(), settings)
    if device not in DEVICES:
        raise InputError(f"--device {device!r} is not one of {', '.join(DEVICES)}.")
    if "device" in {f.name for f in dataclasses.fields(config)}:
        config = apply_overrides(config, {"device": device})
    elif device != "auto":
        raise InputError(f"model {model} has no device setting (it runs on the CPU only); drop --device {device}.")
    return cls, config


@command("train")
def train_command(
    model: str = typer.Argument(..., help=f"Model name: {', '.join(available_models())}."),
    store: Path = typer.Option(..., "--store", help="Store to train on (from `segue ingest`, or SPLIT/train)."),
    out: Path = typer.Option(..., "--out", help="Model directory to write (replaced whole on success)."),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value (repeatable)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (models with a device setting)."),
    nproc: int = typer.Option(1, "--nproc", help="Processes for distributed training (models that support it)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    force: bool = typer.Option(False, "--force", help="Replace --out even when it is not a segue model."),
) -> None:
    """Train a model on a store and save it to a model directory."""
    cls, config = model_config(model, settings or [], device)
    if nproc < 1:
        raise InputError(f"--nproc must be at least 1 (got {nproc}).")
    distributed = getattr(cls, "train_distributed", None)
    if nproc > 1 and distributed is None:
        raise InputError(f"model {model} does not support --nproc; train it with --nproc 1.")
    started = time.perf_counter()
    train = Store.open(store)  # a damaged store fails here, before anything is created
    with claim_output(out, MODEL_OUTPUT, inputs=[store], force=force):
        if nproc > 1:
            distributed(store, out, config, nproc)
            what = f"{model} with {nproc} processes"
        else:
            cls(config).fit(train, progress=_progress_enabled(no_progress)).save(out)
            what = f"{model} on {plural(train.n_playlists, 'playlist')} x {plural(train.n_tracks, 'track')}"
    seconds = time.perf_counter() - started
    console.print(
        f"trained {what} in {seconds:.1f}s, peak memory {human_bytes(peak_memory_bytes())}, "
        f"model {human_bytes(directory_size(out))} at {out}", soft_wrap=True
    )


@command("recommend")
def recommend_command(
    model_dir: Path = typer.Argument(..., help="Model directory (from `segue train`)."),
    tracks: Optional[list[str]] = typer.Option(None, "--track", help="Seed track URI (repeatable)."),
    pid: Optional[int] = typer.Option(None, "--pid", help="Use the first tracks of this store playlist as seeds."),
    title: Optional[str] = typer.Option(None, "--title", help="Playlist title (default with --pid: its name)."),
    k: int = typer.Option(15, "-k", "--k", help="How many recommendations."),
    store_path: Optional[Path] = typer.Option(None, "--store", help="Store (default: the one the model was trained on)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="With --pid: seeds taken (default min(20, half))."),
) -> None:
    """Recommend tracks for seed tracks, a store playlist's first tracks, or just a title."""
    if tracks and pid is not None:
        raise InputError("pass seed tracks with --track or a playlist with --pid, not both.")
    if not tracks and pid is None and title is None:
        raise InputError("pass seed tracks with --track, a playlist with --pid, or at least a --title.")
    if seeds is not None and pid is None:
        raise InputError("--seeds takes the first tracks of a --pid playlist; pass --pid, or seeds with --track.")
    if seeds is not None and seeds < 0:
        raise InputError(f"--seeds must not be negative (got {seeds}).")
    model, store = open_model_and_store(model_dir, store_path)
    continuation: set[int] = set()
    if pid is not None:
        playlist = store.playlist_tracks(store.row_of_pid(pid))
        n_seeds = min(len(playlist), seeds if seeds is not None else min(20, max(1, len(playlist) // 2)))
        seed_ids = np.asarray(playlist[:n_seeds], dtype=np.int32)
        continuation = set(playlist[n_seeds:].tolist()) - set(seed_ids.tolist())
        if title is None:
            title = store.names[store.row_of_pid(pid)]
        about = f"pid {pid} ({title!r}): first {n_seeds} of {len(playlist)} tracks as seeds"
    else:
        uris = list(tracks or [])
        seed_ids = store.track_ids(uris)
        unknown = [u for u, i in zip(uris, seed_ids.tolist()) if i < 0]
        if unknown:
            raise NotFoundError(f"track(s) not in the store {store.path}: {', '.join(unknown)}; "
                                "check the URI (spotify:track:...) or pass the store they are in with --store.")
        about = f"{len(uris)} seed track(s)" + (f", title {title!r}" if title else "")
    ids, scores = model.recommend([seed_ids], k=k, titles=[title])
    keep = ids[0] >= 0
    ids, scores = ids[0][keep], scores[0][keep]
    table = Table(title=f"{model.name}: {about}")
    for column in ("rank", "track", "artist", "album", "score"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    if pid is not None:
        table.add_column("in playlist", justify="center")
    for rank, (info, score, tid) in enumerate(zip(store.track_info(ids), scores.tolist(), ids.tolist()), start=1):
        row = [str(rank), info.get("track_name") or info["track_uri"], info.get("artist_name") or "",
               info.get("album_name") or "", f"{score:.4g}"]
        if pid is not None:
            row.append("[green]yes[/green]" if tid in continuation else "")
        table.add_row(*row)
    console.print(table)
    if pid is not None:
        hits = sum(t in continuation for t in ids.tolist())
        console.print(f"{hits} of {len(ids)} recommendations are in the playlist's real continuation "
                      f"({len(continuation)} tracks).")


__all__ = ["train_command", "recommend_command", "peak_memory_bytes", "human_bytes", "model_config"]
