"""Comparison tables and reports (JSON, Markdown, PNG) from ``evaluate_models`` results."""

from __future__ import annotations

import os
from pathlib import Path

from segue.data.challenge_set import CATEGORY_NAMES
from segue.io import atomic_path, write_json

OVERALL_COLUMNS = (
    ("r_precision", "R-prec"),
    ("r_precision_artist", "R-prec+artist"),
    ("ndcg", "NDCG"),
    ("clicks", "clicks"),
    ("recall_500", "recall@500"),
)
# Said under every table: which NDCG the column is (the rules page's variant is only in the JSON).
NDCG_NOTE = ("NDCG is Spotify's challenge definition (the leaderboard's): DCG over the first 500 recommendations, "
             "repeats dropped, divided by the ideal DCG of min(|G|, 500) hits; the rules page's variant "
             "(normalised by the hits) is in the JSON as ndcg_rules_page.")


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _with_ci(summary: dict, metric: str) -> str:
    value = summary["overall"].get(metric)
    bounds = (summary.get("ci95") or {}).get(metric)
    digits = 2 if metric == "clicks" else 4
    if value is None:
        return "–"
    if not bounds:
        return _fmt(value, digits)
    half = (bounds[1] - bounds[0]) / 2
    return f"{value:.{digits}f} ±{half:.{digits}f}"


def categories_in(results: dict) -> list[str]:
    cats: set[str] = set()
    for summary in results.values():
        cats.update(summary.get("per_category", {}))
    return sorted(cats, key=int)


def table_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per model, overall metrics (± half the 95% CI), then R-precision per category."""
    cats = categories_in(results)
    header = ["model", *(label for _, label in OVERALL_COLUMNS), "n", *(f"R@{c}" for c in cats)]
    rows = []
    for key, summary in results.items():
        per_cat = summary.get("per_category", {})
        rows.append([
            key,
            *(_with_ci(summary, metric) for metric, _ in OVERALL_COLUMNS),
            str(summary["overall"].get("n", "")),
            *(_fmt(per_cat.get(c, {}).get("r_precision")) for c in cats),
        ])
    return header, rows


PAIRED_COLUMNS = (("r_precision", "R-prec"), ("ndcg", "NDCG"), ("clicks", "clicks"))


def paired_rows(results: dict) -> tuple[str, list[str], list[list[str]]] | None:
    """Each later model's difference from the first on the same playlists: title, header and rows, cells like
    ``+0.0090 [+0.0061, +0.0119] +8.5%`` (the paired 95% bootstrap CI, the change relative to the first's mean).
    None with fewer than two models."""
    paired = {key: summary["paired"] for key, summary in results.items() if summary.get("paired")}
    if not paired:
        return None
    against = next(iter(paired.values()))["against"]

    def cell(entry: dict | None, digits: int) -> str:
        if not entry or entry.get("diff") is None:
            return "–"
        lo, hi = entry["ci95"]
        relative = "" if entry["relative"] is None else f" {100 * entry['relative']:+.1f}%"
        return f"{entry['diff']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]{relative}"

    header = ["model", *(f"Δ {label}" for _, label in PAIRED_COLUMNS)]
    rows = [[key, *(cell(diff.get(metric), 2 if metric == "clicks" else 4) for metric, _ in PAIRED_COLUMNS)]
            for key, diff in paired.items()]
    return f"difference from {against}, paired 95% bootstrap CI (same playlists)", header, rows


def rich_table(header: list[str], rows: list[list[str]], title: str | None = None, caption: str | None = None):
    """A rich table: first column left-aligned, the figures right-aligned, cells never wrapped."""
    from rich.table import Table

    table = Table(title=title, show_lines=False, caption=caption, caption_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def print_wide(console, header: list[str], rows: list[list[str]], title: str | None = None,
               caption: str | None = None) -> None:
    """Print the table on ``console``, never squeezed below the width its cells need."""
    from rich.console import Console

    needed = sum(max(len(r[i]) for r in [header, *rows]) + 3 for i in range(len(header))) + 1
    wide = Console(file=console.file, width=max(console.width, needed), force_terminal=console.is_terminal)
    wide.print(rich_table(header, rows, title, caption))


def markdown(results: dict, title: str = "Evaluation") -> str:
    header, rows = table_rows(results)
    lines = [f"# {title}", "", "Overall metrics with ± half the 95% bootstrap confidence interval; "
             "`R@c` is R-precision in challenge category c. Clicks: lower is better.", "", NDCG_NOTE, ""]
    lines += _markdown_table(header, rows)
    paired = paired_rows(results)
    if paired:
        title_line, p_header, p_rows = paired
        lines += ["", f"Each later model's {title_line}:", "", *_markdown_table(p_header, p_rows)]
    lines += ["", "Categories: " + "; ".join(f"{c} {CATEGORY_NAMES.get(int(c), '?')}" for c in categories_in(results)), ""]
    return "\n".join(lines)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines: the first column left-aligned, the figures right-aligned."""
    return ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def to_json(results: dict) -> dict:
    """The ``--json`` shape: ``{model: {"overall", "ci95", "per_category", "info"}}``, plus ``"paired"`` (the
    difference from the first model) for every later model."""
    return results


def plot_png(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cats = categories_in(results)
    models = list(results)
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.0 * len(cats) + 2), 4), dpi=100)
    x = np.arange(len(cats))
    for i, key in enumerate(models):
        per_cat = results[key].get("per_category", {})
        values = [per_cat.get(c, {}).get("r_precision") or 0.0 for c in cats]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, label=key)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{c}\n{CATEGORY_NAMES.get(int(c), '')}".replace(" + ", "+\n", 1) for c in cats], fontsize=7)
    ax.set_ylabel("R-precision")
    ax.set_title("R-precision per challenge category")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def report_paths(out: str | os.PathLike) -> list[Path]:
    """``OUT.json``, ``OUT.md`` and ``OUT.png`` (an extension of these given on ``out`` is dropped)."""
    base = Path(out)
    if base.suffix in (".json", ".md", ".png"):
        base = base.with_suffix("")
    return [base.with_name(base.name + ext) for ext in (".json", ".md", ".png")]


def write_report(results: dict, out: str | os.PathLike, title: str = "Evaluation") -> list[Path]:
    """Write ``OUT.json``, ``OUT.md`` and ``OUT.png`` (each atomically); returns the paths."""
    paths = report_paths(out)
    write_json(paths[0], to_json(results))
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(markdown(results, title), encoding="utf-8")
    plot_png(results, paths[2])
    return paths
