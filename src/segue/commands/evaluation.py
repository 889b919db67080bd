"""Evaluation by the RecSys Challenge 2018 rules: split, evaluate, submit, verify, score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from segue.commands._app import command, console, err_console, fail


def _progress_enabled() -> bool:
    return err_console.is_terminal


def _warn(lines) -> None:
    for line in lines:
        err_console.print(f"[bold red]warning:[/bold red] {line}", soft_wrap=True, highlight=False)


FORCE_HELP = "Go on (with a loud warning) when the model was not trained on the split's training store."


def _print_table(results: dict, title: str) -> None:
    """One comparison table, never squeezed below the width its cells need; says which NDCG it shows."""
    from segue.evaluate.report import NDCG_NOTE, paired_rows, print_wide, table_rows

    print_wide(console, *table_rows(results), title=title, caption=NDCG_NOTE)
    paired = paired_rows(results)
    if paired:
        paired_title, header, rows = paired
        print_wide(console, header, rows, title=paired_title)


@command("split")
def split_command(
    store: Annotated[Path, typer.Argument(help="Store to split (from `segue ingest`).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write train/, challenge_set.json, answers.json, split.json.")],
    per_category: Annotated[int, typer.Option("--per-category", help="Test playlists per category (10 categories).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same split.")] = 0,
    min_holdouts: Annotated[int, typer.Option("--min-holdouts", help="Held-out tracks a test playlist needs at least.")] = 5,
    force: Annotated[bool, typer.Option("--force", help="Replace --out even when it is not a split.")] = False,
) -> None:
    """Hold out playlists the way the RecSys Challenge 2018 challenge set was built."""
    from segue.data.split import make_split

    info = make_split(store, out, per_category=per_category, seed=seed, min_holdouts=min_holdouts, force=force)
    counts = ", ".join(f"{c}:{n}" for c, n in info.counts.items())
    dropped = info.dropped
    console.print(
        f"split {store} -> {out}: {info.n_test} test playlists ({counts}), {info.train_playlists} train; "
        f"dropped answers: {dropped['holdouts_not_in_train']} not in train, "
        f"{dropped['holdouts_repeating_a_seed']} repeating a seed, {dropped['holdouts_repeated']} repeats; "
        f"{dropped['playlists_without_answers']} playlists without answers returned to train; "
        f"{info.seed_tracks_not_in_train} seed tracks not in train.",
        soft_wrap=True,
    )


@command("evaluate")
def evaluate_command(
    model_dirs: Annotated[list[Path], typer.Argument(help="Model directories (from `segue train`).")],
    split: Annotated[Path, typer.Option("--split", help="Split directory (from `segue split`).")],
    k: Annotated[int, typer.Option("--k", help="Recommendations per playlist.")] = 500,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write OUT.json, OUT.md and OUT.png.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON.")] = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="Store the models were trained on (default: recorded in each model).")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Score models on a split and print one comparison table."""
    from segue.evaluate.report import report_paths, write_report
    from segue.evaluate.runner import evaluate_models
    from segue.io import FILE_OUTPUT, claim_outputs, write_json

    if k <= 0:
        raise fail(f"--k must be positive, got {k}.")
    outputs = [(json_out, "--json"), *((path, "--report") for path in (report_paths(report) if report else []))]
    # claimed before the work: an output that cannot be written fails now, not after every model has run
    with claim_outputs(outputs, FILE_OUTPUT, inputs=[split, *model_dirs, *([store] if store else [])]):
        results = evaluate_models(model_dirs, split, k=k, store=store,
                                  progress=not no_progress and _progress_enabled(), force=force)
        _print_table(results, title=f"{split} (k={k})")
        _warn(w for summary in results.values() for w in summary["info"]["warnings"])
        if json_out:
            write_json(json_out, results)
            console.print(f"wrote {json_out}")
        if report:
            paths = write_report(results, report, title=f"Evaluation on {split}")
            console.print("wrote " + ", ".join(str(p) for p in paths))


@command("submit")
def submit_command(
    model_dir: Annotated[Path, typer.Argument(help="Model directory.")],
    challenge: Annotated[Path, typer.Option("--challenge", help="challenge_set.json")],
    out: Annotated[Path, typer.Option("--out", help="Submission file; gzipped when it ends in .gz.")],
    team: Annotated[str, typer.Option("--team", help="Team name for the team_info line.")] = "segue",
    email: Annotated[str, typer.Option("--email", help="Contact e-mail for the team_info line.")] = "segue@example.com",
    track: Annotated[str, typer.Option("--track", help="Challenge track: main or creative.")] = "main",
    store: Annotated[Optional[Path], typer.Option("--store", help="Store the model was trained on (default: recorded in the model).")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Write an official-format submission (500 distinct non-seed tracks per challenge playlist)."""
    from segue.evaluate.runner import make_submission
    from segue.io import FILE_OUTPUT, claim_output

    with claim_output(out, FILE_OUTPUT, inputs=[challenge, model_dir, *([store] if store else [])]):
        info = make_submission(model_dir, challenge, out, team=team, email=email, track=track, store=store,
                               progress=not no_progress and _progress_enabled(), force=force)
    _warn(info["warnings"])
    console.print(f"wrote {out}: {info['playlists']} playlists, {info['padded_playlists']} padded from popularity, "
                  f"{info['seeds_unknown_to_store']} seed tracks unknown to the model's store.", soft_wrap=True)


@command("verify")
def verify_command(
    submission: Annotated[Path, typer.Argument(help="Submission file (gzip or plain).")],
    challenge: Annotated[Path, typer.Option("--challenge", help="challenge_set.json")],
) -> None:
    """Check a submission with every rule of the official checker; exit 1 when any fails."""
    from segue.data.challenge_set import load_challenge
    from segue.evaluate.submission import verify_submission

    errors = verify_submission(submission, load_challenge(challenge, use_hints=False))
    if errors:
        for line in errors:
            err_console.print(f"{submission}: {line}", soft_wrap=True, markup=False, highlight=False)
        raise fail(f"{submission} fails {len(errors)} check(s) of the official checker.")
    console.print(f"{submission}: OK (passes every check of the official checker)")


@command("score")
def score_command(
    submission: Annotated[Path, typer.Argument(help="Submission file (gzip or plain).")],
    answers: Annotated[Path, typer.Option("--answers", help="answers.json from `segue split`.")],
    challenge: Annotated[Optional[Path], typer.Option("--challenge", help="challenge_set.json (for categories).")] = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="Store that knows track artists (for the artist credit).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics as JSON.")] = None,
) -> None:
    """Metrics of a submission file against held-out answers."""
    from segue.evaluate.runner import score_submission
    from segue.io import FILE_OUTPUT, claim_output, write_json

    inputs = [submission, answers, *(p for p in (challenge, store) if p)]
    with claim_output(json_out, FILE_OUTPUT, inputs=inputs, flag="--json"):
        result = score_submission(submission, answers, challenge=challenge, store=store)
        failed = result["info"]["verify_failures"]
        if failed:
            _warn([f"{submission} fails {failed} check(s) of `segue verify`; the figures below score it as it is. "
                   "First: " + "; ".join(result["info"]["fails_verify"][:3])])
        _print_table({submission.name: result}, title=str(answers))
        if json_out:
            write_json(json_out, result)
            console.print(f"wrote {json_out}")


__all__ = ["split_command", "evaluate_command", "submit_command", "verify_command", "score_command"]
