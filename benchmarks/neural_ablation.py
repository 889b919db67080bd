"""Which pieces of the neural models matter: one-change-at-a-time ablations of meanvar and sequential.

    OPENBLAS_NUM_THREADS=1 python benchmarks/neural_ablation.py [--playlists 5000] [--per-category 100]
        [--tracks N] [--workdir /tmp/segue-neural-ablation] [--out neural_ablation]
        [--variants popular,als,meanvar,sequential,...] [--set rounds=3] [--threads 2] [--reuse]

Builds (or reuses, in ``--workdir``) generated MPD slices (``--profile``: the generator's profile, by default
``segue synth``'s realistic one where most songs occur in 1-3 playlists, as in real playlists; ``--tracks``:
the catalogue size, larger = sparser), their store
and a challenge-style split, then trains the references (``popular``, ``als``) and each neural variant --
the model's defaults with one setting changed (``--set`` settings apply to every neural variant) -- one at
a time in this process, and evaluates each on the split (:func:`segue.evaluate.runner.evaluate_model`).
The table has the fit time, rounds run, training speed (predictions/s: a pair for meanvar, a window
position for sequential), the best held-out R-precision seen in training, R-precision, NDCG (Spotify's)
and clicks with their 95% bootstrap CI half-widths, and the R-precision / NDCG differences from the same
model's defaults with a *paired* 95% bootstrap CI (:func:`segue.evaluate.metrics.bootstrap_ci` over the
per-playlist differences: the same challenge playlists score both models). Per-category R-precision is in
``OUT.json``. Printed and written as ``OUT.json`` and ``OUT.md``.

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

# key -> (model, settings); "model" alone is its defaults, "model:change" one change from them
REFERENCES = {
    "popular": ("popular", []),
    "als": ("als", []),
    "cooccur": ("cooccur", []),
}
NEURAL = ("meanvar", "sequential")
OLD_BUDGET = ["min_steps=0", "rounds=5"]  # meanvar's budget before issue 10 (5 rounds of 5 pairs per playlist)
VARIANTS = {
    "meanvar": [],
    "meanvar:init=normal": ["init=normal"],
    "meanvar:title=false": ["title=false"],
    "meanvar:shuffle=0": ["shuffle=0"],
    "meanvar:old-budget": OLD_BUDGET,
    "meanvar:pairs_per_playlist=0": ["pairs_per_playlist=0"],
    "meanvar:data=seed": ["data=seed", "files=0", "training_sets=10"],
    "meanvar:hard_negatives=32": ["hard_negatives=32"],
    "meanvar:seed-defaults": ["init=normal", "title=false", "shuffle=0", *OLD_BUDGET],
    "sequential": [],
    "sequential:init=normal": ["init=normal"],
    "sequential:title=false": ["title=false"],
    "sequential:shuffle=0": ["shuffle=0"],
    "sequential:target=later": ["target=later"],
    "sequential:hard_negatives=32": ["hard_negatives=32"],
    "sequential:pool=last": ["pool=last"],
    "sequential:table_lr=0.3": ["table_lr=0.3"],
    "sequential:dropout=0.2": ["dropout=0.2"],
    "sequential:negatives=8192": ["negatives=8192"],
    "sequential:batch_size=128": ["batch_size=128"],
    "sequential:embedding_decay=0.3": ["embedding_decay=0.3"],
    "sequential:holdout=0.1": ["holdout=0.1"],
    "sequential:max_len=50": ["max_len=50"],
    "sequential:lr=3e-3": ["lr=3e-3"],
    "sequential:lr=1e-3": ["lr=1e-3"],
    "sequential:min_steps=0": ["min_steps=0"],
    "sequential:layers=1": ["layers=1"],
    "sequential:dim=128": ["dim=128", "heads=4"],
}
SHOWN = ("r_precision", "ndcg", "clicks")


def build_data(workdir: Path, playlists: int, per_category: int, seed: int, tracks: int | None,
               profile: str | None) -> Path:
    """Slices -> store -> split under ``workdir`` (reused when ``data.json`` matches); returns the split dir."""
    from segue.data.ingest import ingest
    from segue.data.split import make_split
    from segue.data.synth import synthesize

    wanted = {"playlists": playlists, "per_category": per_category, "seed": seed, "tracks": tracks,
              "profile": profile}
    stamp = workdir / "data.json"
    split_dir = workdir / "split"
    if stamp.exists() and json.loads(stamp.read_text()) == wanted and (split_dir / "train").exists():
        print(f"reusing the split in {split_dir}", file=sys.stderr)
        return split_dir
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    synthesize(workdir / "slices", playlists, seed=seed, tracks_approx=tracks,
               **({"profile": profile} if profile else {}))
    store = ingest([workdir / "slices"], workdir / "store", workers=0)
    make_split(store, split_dir, per_category=per_category, seed=seed)
    stamp.write_text(json.dumps(wanted))
    print(f"built {playlists:,} playlists and a split of {per_category}/category in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return split_dir


def fit_summary(info: dict) -> dict:
    """Rounds run, best held-out R-precision, training speed (a neural model's ``fit_info``)."""
    history = info.get("history") or []
    if not history:
        return {}
    best = max(history, key=lambda r: r.get("val_r_precision", float("-inf")))
    seconds = sum(r["seconds"] for r in history)
    return {"val_r_precision": best.get("val_r_precision"), "rounds_run": info.get("rounds_run"),
            "best_round": info.get("best_round"), "train_playlists": info.get("train_playlists"),
            "predictions_per_s": sum(r["predictions"] for r in history) / max(seconds, 1e-9)}


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
           "per_category_r_precision": per_category(scores.values["r_precision"], scores.categories),
           "config": json.loads(json.dumps(dataclasses.asdict(config)))}
    row_file.write_text(json.dumps(row, indent=1))
    print(f"[{key}] fit {fit_s:.0f} s, R-precision {summary['overall']['r_precision']:.4f}", file=sys.stderr)
    return row, scores.values


def per_category(values: np.ndarray, categories: np.ndarray) -> dict[str, float]:
    return {str(c): float(np.nanmean(values[categories == c])) for c in np.unique(categories)}


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
    head = ["variant", "settings", "fit s", "rounds", "pred/s", "val R-prec", "R-prec ±ci", "NDCG ±ci",
            "clicks ±ci", "ΔR-prec [paired 95% CI]", "ΔNDCG [paired 95% CI]", "ΔR-prec vs als [paired 95% CI]",
            "ΔNDCG vs als [paired 95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        o, ci = r["overall"], r["ci95"]
        half = {m: (ci[m][1] - ci[m][0]) / 2 if ci.get(m) else None for m in SHOWN}
        delta = []
        vs_als = r.get("vs_als", {})
        for d in (r.get("delta", {}).get("r_precision"), r.get("delta", {}).get("ndcg"), vs_als.get("r_precision"),
                  vs_als.get("ndcg")):
            delta.append("—" if d is None else f"{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}]")
        lines.append("| " + " | ".join([
            r["variant"], " ".join(r["settings"]) or "(defaults)", f"{r['fit_s']:.0f}",
            _fmt(r.get("rounds_run"), "d"), _fmt(r.get("predictions_per_s"), ",.0f"),
            _fmt(r.get("val_r_precision"), ".3f"),
            f"{o['r_precision']:.4f} ±{half['r_precision']:.4f}", f"{o['ndcg']:.4f} ±{half['ndcg']:.4f}",
            f"{o['clicks']:.2f} ±{half['clicks']:.2f}", *delta]) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--playlists", type=int, default=5_000)
    parser.add_argument("--per-category", type=int, default=100)
    parser.add_argument("--tracks", type=int, default=None,
                        help="catalogue size (default: the generator's; larger = sparser)")
    parser.add_argument("--profile", default=None, help="generator profile (default: segue synth's)")
    parser.add_argument("--seed", type=int, default=0, help="data and split seed")
    parser.add_argument("--workdir", default="/tmp/segue-neural-ablation")
    parser.add_argument("--out", default="neural_ablation", help="writes OUT.json and OUT.md")
    parser.add_argument("--variants", default=",".join([*REFERENCES, *VARIANTS]),
                        help="comma-separated keys of: " + ", ".join([*REFERENCES, *VARIANTS]))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra setting applied to every neural variant (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the neural models")
    parser.add_argument("--reuse", action="store_true", help="reuse trained models whose settings match")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("segue.models.neural").setLevel(logging.INFO)  # one line per training round

    from segue.data.split import load_split

    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    unknown = [k for k in keys if k not in REFERENCES and k not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {[*REFERENCES, *VARIANTS]}")
    for base in NEURAL:  # the deltas need each model's defaults
        if any(k.startswith(base + ":") for k in keys) and base not in keys:
            keys.append(base)
    keys.sort(key=lambda k: (k not in REFERENCES, k.split(":")[0], ":" in k))

    workdir = Path(args.workdir)
    split_dir = build_data(workdir, args.playlists, args.per_category, args.seed, args.tracks, args.profile)
    split = load_split(split_dir)
    common = [f"threads={args.threads}", *args.set]
    rows, values = [], {}
    started = time.perf_counter()
    for key in keys:
        if key in REFERENCES:
            model_name, settings = REFERENCES[key]
        else:
            model_name, settings = key.split(":")[0], common + VARIANTS[key]
        row, values[key] = run_variant(key, model_name, settings, split, split_dir, workdir / "models",
                                       args.reuse, args.progress)
        row["settings"] = settings if key in REFERENCES else VARIANTS[key]
        rows.append(row)
    for row in rows:
        base = row["variant"].split(":")[0]
        if base in NEURAL and "als" in values:
            row["vs_als"] = {m: paired_delta(values[row["variant"]][m], values["als"][m])
                             for m in ("r_precision", "ndcg")}
        if ":" in row["variant"] and base in values:
            row["delta"] = {m: paired_delta(values[row["variant"]][m], values[base][m])
                            for m in ("r_precision", "ndcg", "clicks")}
    total = time.perf_counter() - started

    n = rows[0]["overall"]["n"] if rows else 0
    train = rows[0].get("train_playlists") if rows else None
    title = (f"neural ablation: {args.playlists:,} generated playlists ({args.profile or 'default'} profile, "
             f"seed {args.seed}"
             f"{f', ~{args.tracks:,} songs' if args.tracks else ''}), split {args.per_category}/category "
             f"({n} challenge playlists); neural settings for all variants: {' '.join(common)}; "
             f"{total / 60:.1f} min in all.")
    legend = ("Δ = variant − the same model's defaults (vs als: − als) on the same playlists (paired bootstrap "
              "95% CI); ±ci = "
              "half-width of each model's own 95% bootstrap CI; pred/s = training predictions per second "
              "(a pair for meanvar, a window position for sequential); val R-prec = best held-out R-precision "
              "during training (its own held-out playlists, not the challenge set).")
    header = [title, legend, ""]
    lines = header + table(rows)
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"playlists": args.playlists, "per_category": args.per_category, "tracks": args.tracks,
         "profile": args.profile, "seed": args.seed,
         "train_playlists": train, "common_settings": common, "minutes": round(total / 60, 2), "rows": rows},
        indent=1))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
