"""Rerank's cost: feature rows per second and peak memory for building features and scoring, beside its
first candidate model (the baseline) on the same playlists, then extrapolated to the full challenge and MPD.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/rerank.py --playlists 10000
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/rerank.py --store /tmp/m/split/train --set n_candidates=300
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/rerank.py --model models/rerank   # an already trained one

It fits ``rerank`` (``--set`` applies to its config) on the store (or loads ``--model`` and its store), draws ``--queries`` challenge-like playlists
(the ranker split's machinery: ten categories, first or random seeds, titles dropped where the category says)
and times, batch by batch, each candidate model's dense scoring, the feature building on top of it, the
ranker's prediction, and the whole ``recommend``, against the first candidate model's ``recommend``.
Peak memory is the process's peak RSS (VmHWM, reset before each stage) above the RSS before it.

Extrapolation (2 cores / 24 GB): dense scoring is linear in the number of tracks, features and the ranker
in the number of (playlist, candidate) rows; for the full challenge, 10,000 playlists x 1,000 candidates.
Training on the full MPD: the candidate models are fitted ranker_folds + 1 times (without each fold of ranker
playlists, then refitted on everything; their own costs are benchmarks/models.py's), plus the ranker
playlists' candidates and features (dense scoring at the full track count) and LightGBM on their rows, scaled
by rows from what was measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from models import FULL, MEMORY_LIMIT, _reset_peak, _status_bytes, human  # noqa: E402

CHALLENGE_PLAYLISTS = 10_000
CHALLENGE_CANDIDATES = 1_000


def timed_peak(fn):
    """(result, seconds, peak bytes above the RSS before the call)."""
    before = _status_bytes("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start, max(0, _status_bytes("VmHWM") - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playlists", type=int, default=10_000, help="generated playlists (without --store)")
    parser.add_argument("--store", help="benchmark on this store instead of generated data")
    parser.add_argument("--queries", type=int, default=1000, help="challenge-like playlists to score")
    parser.add_argument("--set", action="append", default=[], help="rerank config override key=value")
    parser.add_argument("--model", help="a trained rerank model directory (skips fitting; fit figures from it)")
    args = parser.parse_args()

    from segue.config import apply_overrides
    from segue.data.store import Store, build_store, csr_slice
    from segue.models.base import open_model_and_store
    from segue.models.rerank import Rerank, RerankConfig
    from segue.models.rerank_features import make_ranker_split

    with tempfile.TemporaryDirectory() as tmp:
        store_path = args.store
        if args.model:
            model, store = open_model_and_store(args.model, store_path)
            store_path = str(store.path)
        elif store_path is None:
            from segue.data.synth import generate_playlists

            store_path = str(Path(tmp) / "store")
            print(f"generating {args.playlists:,} playlists ...", flush=True)
            build_store(generate_playlists(args.playlists, seed=0), store_path)
        store = Store.open(store_path)
        config = model.config if args.model else apply_overrides(RerankConfig(), args.set)
        print(f"data: {store.n_playlists:,} playlists, {store.n_entries:,} entries, {store.n_tracks:,} tracks; "
              f"{os.cpu_count()} cores; rerank {config}\n", flush=True)
        if args.model:
            fit_s, fit_peak = model.fit_info["seconds"]["total"], None
        else:
            model, fit_s, fit_peak = timed_peak(lambda: Rerank(config).fit(store))
        queries = make_ranker_split(store, args.queries, config.min_holdouts, seed=1)
        base = next(iter(model.models.values()))
        step = model.batch_rows()
        stages = {k: [0.0, 0] for k in ("baseline", *model.models, "features", "ranker", "rerank")}
        rows = 0
        for start in range(0, len(queries), step):
            stop = min(len(queries), start + step)
            ptr, idx = csr_slice(queries.seed_indptr, queries.seed_indices, start, stop)
            titles, first = queries.titles[start:stop], queries.first_seeds()[start:stop]
            measured = {"baseline": lambda: base.recommend((ptr, idx), k=500, titles=titles)}
            for name, candidate in model.models.items():
                measured[name] = lambda c=candidate: c._score_with_fallback(ptr, idx, titles)
            measured["features"] = lambda: model.build_candidates(ptr, idx, titles, first)
            measured["rerank"] = lambda: model.recommend((ptr, idx), k=500, titles=titles, first_seeds=first)
            for name, fn in measured.items():
                result, seconds, peak = timed_peak(fn)
                stages[name][0] += seconds
                stages[name][1] = max(stages[name][1], peak)
                if name == "features":
                    block = result
            _, seconds, peak = timed_peak(lambda: model.ranker.predict(block.features, num_threads=config.threads))
            stages["ranker"][0] += seconds
            stages["ranker"][1] = max(stages["ranker"][1], peak)
            rows += len(block.rows)
    model_s = sum(stages[name][0] for name in model.models)
    feature_only_s = max(1e-9, stages["features"][0] - model_s)  # build_candidates minus the models' scoring
    n = len(queries)
    info = model.fit_info
    peak_text = f"peak {human(fit_peak)}" if fit_peak is not None else "peak not measured (loaded model)"
    print(f"fit: {fit_s:.1f}s, {peak_text}; ranker {info['ranker_playlists']} playlists, "
          f"{info['ranker_rows']:,} rows, {info['best_iteration']} trees\n")
    print(f"scoring {n} playlists in batches of {step}, {rows:,} candidate rows ({rows / n:.0f} per playlist):")
    print(f"{'stage':22s} {'seconds':>8s} {'playlists/s':>12s} {'rows/s':>12s} {'peak':>10s}")
    for name, (seconds, peak) in stages.items():
        label = {"baseline": f"baseline: {base.name}", "features": "candidates+features"}.get(name, name)
        if name in model.models:
            label = f"  {name} dense scores"
        print(f"{label:22s} {seconds:8.2f} {n / seconds:12.0f} {rows / seconds:12.0f} {human(peak):>10s}")
    print(f"{'  features alone':22s} {feature_only_s:8.2f} {n / feature_only_s:12.0f} {rows / feature_only_s:12.0f}")
    print(f"rerank vs baseline: {stages['rerank'][0] / stages['baseline'][0]:.1f}x the time per playlist")

    # ---- extrapolation ---------------------------------------------------------------------------------------
    track_scale = FULL["tracks"] / store.n_tracks
    dense_per_playlist = model_s / n * track_scale
    feature_per_row = feature_only_s / rows
    ranker_per_row = stages["ranker"][0] / rows
    challenge_rows = CHALLENGE_PLAYLISTS * CHALLENGE_CANDIDATES
    parts = {
        "candidate models' dense scores": dense_per_playlist * CHALLENGE_PLAYLISTS,
        "features": feature_per_row * challenge_rows,
        "ranker": ranker_per_row * challenge_rows,
    }
    print(f"\nfull challenge ({CHALLENGE_PLAYLISTS:,} playlists x {CHALLENGE_CANDIDATES:,} candidates, "
          f"{FULL['tracks']:,} tracks), 2 cores:")
    for name, seconds in parts.items():
        print(f"  {name:40s} {seconds / 60:8.1f} min")
    print(f"  dominated by: {max(parts, key=parts.get)}")
    block_bytes = step * store.n_tracks * 4 * (len(model.models) + 2)
    print(f"  memory: dense blocks stay at ~{human(block_bytes)} (batch rows shrink as tracks grow); features "
          f"{human(rows / n * model.batch_rows() * 4 * block.features.shape[1])} per batch")

    folds = info.get("ranker_folds", 1)
    fits = folds + bool(info.get("refit", True))
    ranker_playlists = folds * min(config.ranker_playlists, int(config.ranker_fraction * FULL["playlists"]))
    train_rows = info["ranker_rows"] / info["ranker_playlists"] * ranker_playlists
    fit_seconds = info["seconds"]
    train_parts = {
        f"candidate models (fit {fits}x, by entries)": (fit_seconds["candidates"] + fit_seconds.get("refit", 0))
        * FULL["entries"] / store.n_entries,
        "ranker playlists' dense scores": dense_per_playlist * ranker_playlists,
        "ranker features": feature_per_row * train_rows,
        "LightGBM (scaled by rows)": fit_seconds["ranker_training"] * train_rows / info["ranker_rows"],
    }
    print(f"\ntraining on the full MPD ({FULL['playlists']:,} playlists; {ranker_playlists:,} ranker playlists, "
          f"~{train_rows:,.0f} rows) on 2 cores / {human(MEMORY_LIMIT)}:")
    for name, seconds in train_parts.items():
        print(f"  {name:40s} {seconds / 60:8.1f} min")
    print(f"  dominated by: {max(train_parts, key=train_parts.get)} (benchmarks/models.py extrapolates each "
          "candidate model's fit and memory on its own)")
    print(f"  memory: ranker rows {human(train_rows * 4 * (block.features.shape[1] + 1))} as float32 "
          "(LightGBM bins them to about a quarter of that); the candidate models' own peaks dominate")


if __name__ == "__main__":
    main()
