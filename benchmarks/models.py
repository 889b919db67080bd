"""Fit time, peak memory and batch recommendation throughput per model, against ``popular`` as the baseline.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/models.py --playlists 20000
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/models.py --store /tmp/m/split/train --models popular,als

Each model is fitted in its own child process, so its peak memory (``ru_maxrss``) is its own; the figure
reported is the peak (VmHWM, reset after loading the store) above the RSS with the store loaded. Throughput is ``recommend`` on
``--batch`` playlists (each with its first 10 tracks as seeds and its title) at k=500.

The last table extrapolates to the full MPD (1,000,000 playlists, 66,346,428 entries, 2,262,292 tracks)
on 2 cores / 24 GB, scaling each measured figure by the quantity that drives it:

* fit time: entries (popular, title, als: one pass / iteration over the data, per factor² for als), the
  sum of squared playlist lengths (cooccur: the size of XᵀX);
* fit memory: the store's CSR plus what the model keeps: n_tracks (popular), titles x max_tracks_per_title
  (title), n_tracks x neighbors (cooccur: the kept similarities bound it), (playlists + tracks) x factors
  (als), measured here per unit and multiplied up;
* throughput: dense scoring and top-k are linear in n_tracks.

These are estimates from one run on generated data; the real MPD has more titles and a longer tail.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

FULL = {"playlists": 1_000_000, "entries": 66_346_428, "tracks": 2_262_292, "titles": 17_300}
# E[len²] of the real MPD's length distribution is not published; the generator matches its
# mean (66.3) and median (49), so the benchmark data's own E[len²] stands in for it.
MEMORY_LIMIT = 24 * 2**30
DEFAULT_MODELS = "popular,title,cooccur,als"


def _status_bytes(field: str) -> int:
    """VmRSS / VmHWM (peak) of this process from /proc (Linux), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    """Make VmHWM restart from the current RSS (Linux >= 4.0), so the fit's own peak is measured."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def run_one(name: str, store_path: str, batch: int, k: int, settings: list[str]) -> dict:
    """Child process: fit one model, time recommend, print a JSON line."""
    from segue.config import apply_overrides
    from segue.data.store import Store
    from segue.models.base import get_model_class

    store = Store.open(store_path)
    _ = store.indptr, store.indices, store.names, store.csr()  # load what every model reads
    gc.collect()
    _reset_peak()
    baseline = _status_bytes("VmRSS")
    cls = get_model_class(name)
    started = time.perf_counter()
    model = cls(apply_overrides(cls.Config(), settings)).fit(store)
    fit_seconds = time.perf_counter() - started
    fit_peak = _status_bytes("VmHWM") - baseline
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m")
        size = sum(f.stat().st_size for f in (Path(tmp) / "m").rglob("*") if f.is_file())
    rng = np.random.default_rng(0)
    rows = rng.choice(store.n_playlists, size=min(batch, store.n_playlists), replace=False)
    seeds = [store.playlist_tracks(r)[:10] for r in rows]
    titles = [store.names[r] for r in rows]
    model.recommend(seeds[:50], k=k, titles=titles[:50])  # warm up
    started = time.perf_counter()
    model.recommend(seeds, k=k, titles=titles)
    rec_seconds = time.perf_counter() - started
    info = {"name": name, "fit_s": fit_seconds, "fit_peak": fit_peak, "size": size,
            "per_s": len(rows) / rec_seconds, "config": dataclasses.asdict(model.config)}
    info.update({f"fit_{k}": v for k, v in model.fit_info.items() if isinstance(v, (int, float))})
    return info


def data_stats(store_path: str) -> dict:
    from segue.data.store import Store

    store = Store.open(store_path)
    lengths = np.diff(store.indptr).astype(np.float64)
    return {"playlists": store.n_playlists, "entries": store.n_entries, "tracks": store.n_tracks,
            "sum_len2": float((lengths**2).sum()), "mean_len2": float((lengths**2).mean()),
            "csr_bytes": int(store.n_entries * 8 + (store.n_playlists + 1) * 8)}


def extrapolate(result: dict, stats: dict) -> dict:
    """Full-MPD estimates of fit time, fit memory and throughput for one model's measurements."""
    name, cfg = result["name"], result.get("config", {})
    entries = FULL["entries"] / stats["entries"]
    tracks = FULL["tracks"] / stats["tracks"]
    full_csr = FULL["entries"] * 8 * 2  # X and its transpose/CSC copy, as float32 data + int32 indices
    time_scale, memory = entries, result["fit_peak"] * entries
    if name == "popular":
        memory = full_csr + FULL["tracks"] * 16
    elif name == "title":
        kept = min(stats["entries"], FULL["titles"] * cfg.get("max_tracks_per_title", 5000))
        memory = full_csr + kept * 8 * 3
    elif name == "cooccur":
        time_scale = FULL["playlists"] * stats["mean_len2"] / stats["sum_len2"]
        kept = FULL["tracks"] * cfg.get("neighbors", 200) * 8
        per_block = cfg.get("block_nnz", 20_000_000) * 8 * 6  # counts, keys, order, masks of one block
        memory = full_csr + 2 * kept + per_block  # blocks, then their vstack copy
    elif name == "als":
        f = cfg.get("factors", 128)
        memory = full_csr + (FULL["playlists"] + FULL["tracks"]) * f * 4 * 2 + FULL["entries"] * 8 * 2
        time_scale = (FULL["entries"] + (FULL["playlists"] + FULL["tracks"]) * f) / (
            stats["entries"] + (stats["playlists"] + stats["tracks"]) * f)
    return {"fit_s": result["fit_s"] * time_scale, "memory": memory, "per_s": result["per_s"] / tracks}


def fix_for(name: str, memory: float) -> str:
    if memory <= MEMORY_LIMIT * 0.8:
        return "fits"
    return {
        "cooccur": "does NOT fit: lower neighbors (memory is n_tracks x neighbors x 8 B) or block_nnz",
        "als": "does NOT fit: lower factors, or train with float16 factors / on a GPU",
        "title": "does NOT fit: lower max_tracks_per_title",
    }.get(name, "does NOT fit")


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playlists", type=int, default=20_000, help="generated playlists (without --store)")
    parser.add_argument("--store", help="benchmark on this store instead of generated data")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--batch", type=int, default=1000, help="playlists per recommend call")
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--set", action="append", default=[], help="MODEL:key=value config override")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        settings = [s.split(":", 1)[1] for s in args.set if s.startswith(args.one + ":")]
        print(json.dumps(run_one(args.one, args.store, args.batch, args.k, settings)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        store_path = args.store
        if store_path is None:
            from segue.data.store import build_store
            from segue.data.synth import generate_playlists

            store_path = str(Path(tmp) / "store")
            print(f"generating {args.playlists:,} playlists ...", flush=True)
            build_store(generate_playlists(args.playlists, seed=0), store_path)
        stats = data_stats(store_path)
        print(f"data: {stats['playlists']:,} playlists, {stats['entries']:,} entries, {stats['tracks']:,} tracks; "
              f"k={args.k}, batch={args.batch}, {os.cpu_count()} cores\n", flush=True)
        results = []
        for name in args.models.split(","):
            cmd = [sys.executable, __file__, "--one", name, "--store", store_path, "--batch", str(args.batch),
                   "--k", str(args.k), *[f"--set={s}" for s in args.set]]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(f"{name}: failed\n{out.stderr[-2000:]}")
                continue
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))

    base = next((r for r in results if r["name"] == "popular"), results[0])
    print(f"{'model':10s} {'fit s':>8s} {'x base':>7s} {'fit peak':>10s} {'x base':>7s} {'on disk':>10s} "
          f"{'playlists/s':>12s} {'x base':>7s}")
    for r in results:
        print(f"{r['name']:10s} {r['fit_s']:8.2f} {r['fit_s'] / base['fit_s']:7.1f} {human(r['fit_peak']):>10s} "
              f"{r['fit_peak'] / max(base['fit_peak'], 1):7.1f} {human(r['size']):>10s} {r['per_s']:12.0f} "
              f"{r['per_s'] / base['per_s']:7.2f}")
    print(f"\nextrapolated to the full MPD ({FULL['playlists']:,} playlists, {FULL['entries']:,} entries, "
          f"{FULL['tracks']:,} tracks) on 2 cores / 24 GB:")
    print(f"{'model':10s} {'fit':>10s} {'fit memory':>11s} {'playlists/s':>12s} {'10k challenge':>14s}  verdict")
    for r in results:
        e = extrapolate(r, stats)
        print(f"{r['name']:10s} {e['fit_s'] / 60:8.1f} m {human(e['memory']):>11s} {e['per_s']:12.1f} "
              f"{10_000 / e['per_s'] / 60:12.1f} m  {fix_for(r['name'], e['memory'])}")


if __name__ == "__main__":
    main()
