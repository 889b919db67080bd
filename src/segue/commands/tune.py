"""`segue tune`: choose a model's settings on a store by the challenge's protocol, then train the winner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from segue.commands._app import command, console
from segue.models.base import available_models


@command("tune")
def tune_command(
    model: str = typer.Argument(..., help=f"Model name: {', '.join(available_models())}."),
    store: Path = typer.Option(..., "--store", help="Store to tune and train on (from `segue ingest`, or SPLIT/train)."),
    out: Path = typer.Option(..., "--out", help="Model directory to write (replaced whole on success)."),
    trials: Optional[int] = typer.Option(None, "--trials", help="Finished trials the search should hold [default: 20 "
                                         "without --minutes]; a rerun adds trials up to this number."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Start no new trial after this many minutes."),
    space: Optional[Path] = typer.Option(None, "--space", help="JSON (or .toml) file of ranges replacing the model's: "
                                         '{"factors": {"low": 32, "high": 256, "log": true}, "weighting": '
                                         '{"choices": ["bm25"]}, "iterations": 15}.'),
    metric: str = typer.Option("r_precision", "--metric", help="r_precision, ndcg or clicks (Spotify's definitions)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the TPE sampler (the validation split's is fixed)."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard an interrupted or earlier search and start anew."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    force: bool = typer.Option(False, "--force", help="Replace --out even when it is not a segue model."),
) -> None:
    """Search a model's settings on a validation split carved out of STORE, then train the best on all of STORE.

    The search (an Optuna study) lives in .OUT.tune/ beside OUT while it runs, so an interrupted search resumes
    when the command is rerun; at the end OUT holds the model, study.sqlite3 and search.png, and config.json
    records the search.
    """
    from segue.evaluate.tune import tune

    result = tune(model, store, out, trials=trials, minutes=minutes, space_file=space, metric=metric, seed=seed,
                  fresh=fresh, progress=not no_progress and sys.stderr.isatty(), force=force)
    search = result.search
    defaults = (f", defaults {result.default_value:.4f}" if result.default_value is not None else "")
    resumed = f" ({result.resumed} from an earlier run)" if result.resumed else ""
    console.print(
        f"tuned {model}: {result.trials} trials{resumed}, {result.pruned} pruned; best validation {search['metric']} "
        f"{result.best_value:.4f} (trial {search['best_trial']}{defaults}) on "
        f"{search['validation']['playlists']} validation playlists", soft_wrap=True)
    console.print("best settings: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                 for k, v in result.best_params.items()), soft_wrap=True)
    console.print(f"trained on all of {store}; wrote {result.out} (config.json, study.sqlite3, search.png)",
                  soft_wrap=True)


__all__ = ["tune_command"]
