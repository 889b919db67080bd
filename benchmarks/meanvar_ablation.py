"""Which of meanvar's generalisation options matter: one-change-at-a-time ablations on a generated split.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/meanvar_ablation.py [--playlists 20000]
        [--per-category 200] [--workdir /tmp/segue-meanvar-ablation] [--out meanvar_ablation]
        [--variants default,data=seed,...] [--set rounds=3] [--threads 2] [--reuse]

Builds (or reuses, in ``--workdir``) generated MPD slices, their store and a challenge-style split, then
trains ``popular`` and ``cooccur`` (references) and meanvar with its default config and with one setting
changed per variant (``--set`` settings apply to every meanvar variant), one model at a time in this process,
and evaluates each on the split (:func:`segue.evaluate.runner.evaluate_model`, the per-playlist scores behind
``evaluate_models``). The table has the fit time, meanvar's last train / best held-out loss (``fit_info``),
R-precision, NDCG, clicks with their 95% bootstrap CI half-widths, and the R-precision / NDCG differences
from the default meanvar with a *paired* 95% bootstrap CI (the same challenge playlists score both models, so
the paired interval is much tighter than the two separate ones). It is printed and written as
``OUT.json`` and ``OUT.md``.

With ``--reuse`` a variant whose model directory and result file exist (same settings) is not retrained.
Results are from one seed on generated data: they rank options, they do not predict MPD numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

# name -> (model, settings); meanvar variants change one thing from the default config
REFERENCES = {
    "popular": ("popular", []),
    "cooccur": ("cooccur", []),
}
VARIANTS = {
    "default": [],
    "data=seed": ["data=seed", "files=0", "training_sets=10"],
    "item_features=track": ["item_features=track"],
    "init=als": ["init=als"],
    "variance=false": ["variance=false"],
    "residual=false": ["residual=false"],
    "tied=false": ["tied=false"],
    "dropout=0": ["dropout=0"],
    "weight_decay=1e-4": ["weight_decay=1e-4"],
    "embedding_decay=1e-4": ["embedding_decay=1e-4"],
    "target=next": ["target=next"],
}
SHOWN = ("r_precision", "ndcg", "clicks")


def build_data(workdir: Path, playlists: int, per_category: int, seed: int) -> Path:
    """Slices -> store -> split under ``workdir`` (reused when ``data.json`` matches); returns the split dir."""
    from segue.data.ingest import ingest
    from segue.data.split import make_split
    from segue.data.synth import synthesize

    wanted = {"playlists": playlists, "per_category": per_category, "seed": seed}
    stamp = workdir / "data.json"
    split_dir = workdir / "split"
    if stamp.exists() and json.loads(stamp.read_text()) == wanted and (split_dir / "train").exists():
        print(f"reusing the split in {split_dir}", file=sys.stderr)
        return split_dir
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    synthesize(workdir / "slices", playlists, seed=seed)
    store = ingest([workdir / "slices"], workdir / "store", workers=0)
    make_split(store, split_dir, per_category=per_category, seed=seed)
    stamp.write_text(json.dumps(wanted))
    print(f"built {playlists:,} playlists and a split of {per_category}/category in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return split_dir


def fit_summary(info: dict) -> dict:
    """Last round's train loss, best held-out loss/recall, rounds run (meanvar's ``fit_info``)."""
    history = info.get("history") or []
    if not history:
        return {}
    best = min(history, key=lambda r: r.get("val_loss", float("inf")))
    return {"train_loss": history[-1].get("train_loss"), "val_loss": best.get("val_loss"),
            "val_recall_at_100": best.get("val_recall_at_100"), "rounds_run": info.get("rounds_run"),
            "best_round": info.get("best_round"), "train_playlists": info.get("train_playlists")}


def run_variant(key: str, model_name: str, settings: list[str], split, split_dir: Path, models_dir: Path,
                reuse: bool, progress: bool) -> tuple[dict, dict[str, np.ndarray]]:
    """Fit (or reuse), save and evaluate one model; returns (row, per-playlist metric values)."""
    from segue.config import apply_overrides
    from segue.data.store import Store
    from segue.evaluate.runner import evaluate_model
    from segue.models.base import get_model_class

    model_dir = models_dir / key.replace("=", "-")
    row_file = model_dir.with_suffix(".row.json")
    cls = get_model_class(model_name)
    config = apply_overrides(cls.Config(), settings)
    if reuse and row_file.exists() and (model_dir / "config.json").exists():
        row = json.loads(row_file.read_text())
        if row.get("config") == json.loads(json.dumps(dataclasses.asdict(config))):
            print(f"[{key}] reusing {model_dir}", file=sys.stderr)
            scores = evaluate_model(model_dir, split, progress=False)
            return row, scores.values
    print(f"[{key}] fitting {model_name} {' '.join(settings)}", file=sys.stderr)
    store = Store.open(split_dir / "train")
    t0 = time.perf_counter()
    model = cls(config).fit(store, progress=progress)
    fit_s = time.perf_counter() - t0
    model.save(model_dir)
    del model
    scores = evaluate_model(model_dir, split, progress=False)
    summary = scores.summary(ci=True)
    info = json.loads((model_dir / "config.json").read_text()).get("fit_info", {})
    row = {"variant": key, "model": model_name, "settings": settings, "fit_s": round(fit_s, 1),
           **fit_summary(info), "overall": summary["overall"], "ci95": summary["ci95"],
           "config": json.loads(json.dumps(dataclasses.asdict(config)))}
    row_file.write_text(json.dumps(row, indent=1))
    print(f"[{key}] fit {fit_s:.0f} s, R-precision {summary['overall']['r_precision']:.4f}", file=sys.stderr)
    return row, scores.values


def paired_delta(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean of a - b over playlists finite in both, with its paired 95% bootstrap CI."""
    from segue.evaluate.metrics import bootstrap_ci

    ok = np.isfinite(a) & np.isfinite(b)
    diff = (a - b)[ok]
    lo, hi = bootstrap_ci(diff)[0]
    return float(diff.mean()), float(lo), float(hi)


def _fmt(x, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def table(rows: list[dict]) -> list[str]:
    head = ["variant", "settings", "fit s", "rounds", "train loss", "val loss", "R-prec ±ci", "NDCG ±ci",
            "clicks ±ci", "ΔR-prec [paired 95% CI]", "ΔNDCG [paired 95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        o, ci = r["overall"], r["ci95"]
        half = {m: (ci[m][1] - ci[m][0]) / 2 if ci.get(m) else None for m in SHOWN}
        delta = []
        for m in ("r_precision", "ndcg"):
            d = r.get("delta", {}).get(m)
            delta.append("—" if d is None else f"{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}]")
        lines.append("| " + " | ".join([
            r["variant"], " ".join(r["settings"]) or "(defaults)", f"{r['fit_s']:.0f}",
            _fmt(r.get("rounds_run"), "d"), _fmt(r.get("train_loss"), ".3f"), _fmt(r.get("val_loss"), ".3f"),
            f"{o['r_precision']:.4f} ±{half['r_precision']:.4f}", f"{o['ndcg']:.4f} ±{half['ndcg']:.4f}",
            f"{o['clicks']:.2f} ±{half['clicks']:.2f}", *delta]) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--playlists", type=int, default=20_000)
    parser.add_argument("--per-category", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="data and split seed")
    parser.add_argument("--workdir", default="/tmp/segue-meanvar-ablation")
    parser.add_argument("--out", default="meanvar_ablation", help="writes OUT.json and OUT.md")
    parser.add_argument("--variants", default=",".join(["popular", "cooccur", *VARIANTS]),
                        help="comma-separated keys of: " + ", ".join([*REFERENCES, *VARIANTS]))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra meanvar setting applied to every meanvar variant (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for meanvar")
    parser.add_argument("--reuse", action="store_true", help="reuse trained models whose settings match")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from segue.data.split import load_split

    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    unknown = [k for k in keys if k not in REFERENCES and k not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {[*REFERENCES, *VARIANTS]}")
    if any(k in VARIANTS for k in keys) and "default" not in keys:
        keys.insert(0, "default")  # the deltas need it
    keys.sort(key=lambda k: (k not in REFERENCES, k != "default"))

    workdir = Path(args.workdir)
    split_dir = build_data(workdir, args.playlists, args.per_category, args.seed)
    split = load_split(split_dir)
    common = [f"threads={args.threads}", *args.set]
    rows, values = [], {}
    started = time.perf_counter()
    for key in keys:
        model_name, settings = REFERENCES[key] if key in REFERENCES else ("meanvar", common + VARIANTS[key])
        row, values[key] = run_variant(key, model_name, settings, split, split_dir, workdir / "models",
                                       args.reuse, args.progress)
        row["settings"] = settings if key in REFERENCES else VARIANTS[key]
        rows.append(row)
    if "default" in values:
        for row in rows:
            if row["variant"] != "default":
                row["delta"] = {m: paired_delta(values[row["variant"]][m], values["default"][m])
                                for m in ("r_precision", "ndcg", "clicks")}
    total = time.perf_counter() - started

    n = rows[0]["overall"]["n"] if rows else 0
    title = (f"meanvar ablation: {args.playlists:,} generated playlists (seed {args.seed}), split "
             f"{args.per_category}/category ({n} challenge playlists); meanvar settings for all variants: "
             f"{' '.join(common)}; {total / 60:.1f} min in all.")
    legend = ("Δ = variant − default meanvar on the same playlists (paired bootstrap 95% CI); ±ci = half-width "
              "of each model's own 95% bootstrap CI. Losses: last round's train loss, best round's held-out "
              "full-softmax loss (comparable only between variants with the same data regime).")
    header = [title, legend, ""]
    lines = header + table(rows)
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"playlists": args.playlists, "per_category": args.per_category, "seed": args.seed,
         "common_settings": common, "minutes": round(total / 60, 2), "rows": rows}, indent=1))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
