"""Loading a model with its arrays memory-mapped (segue.arrays, the default) vs read whole (the baseline).

    .venv/bin/python benchmarks/model_load.py MODEL_DIR [MODEL_DIR ...] [--requests 100] [--k 500]

Each model is loaded in fresh processes, mapped and read whole (three times each, alternating), and the
script prints the load's wall time and the process's resident memory after it, then the wall time of the
first ``--requests`` recommendations (request-shaped playlists of its store: a mapped model reads its pages
as they are touched) and the resident memory after them, with the ratios. Resident memory is shown whole and
as the process's own part (without file-backed pages, which the kernel can drop and processes share). The page cache is warm (each
file was read before); a cold start from disk favours the mapped load further. A model directory written
before segue.arrays (np.savez, members at any offset) is read whole either way: re-save it to compare
(``--resave DIR``: the first model re-saved there first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

CHILD = r"""
import functools, json, os, sys, time
import numpy as np, psutil
import segue.models._common as common
from segue.arrays import load_arrays
from segue.models.base import open_model_and_store
model_dir, mapped, requests, k = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
common.load_arrays = functools.partial(load_arrays, mmap_mode=mapped)
process = psutil.Process()
started = time.perf_counter()
model, store = open_model_and_store(model_dir)
load_s = time.perf_counter() - started
info = process.memory_info()
load_rss, load_anon = info.rss, info.rss - info.shared  # shared: file-backed pages (a mapped model's)
rng = np.random.default_rng(0)
rows = rng.choice(store.n_playlists, requests, replace=False)
seeds = [store.playlist_tracks(int(r))[: int(rng.choice([1, 5, 10, 25, 100]))] for r in rows]
titles = [store.names[r] for r in rows]
started = time.perf_counter()
for s, t in zip(seeds, titles):
    model.recommend([s], k=k, titles=[t])
info = process.memory_info()
print(json.dumps({"load_s": load_s, "load_rss": load_rss, "load_anon": load_anon,
                  "requests_s": time.perf_counter() - started, "rss": info.rss, "anon": info.rss - info.shared}))
"""


def measure(model_dir: str, mapped: bool, requests: int, k: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, model_dir, "1" if mapped else "0", str(requests), str(k)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resave", help="re-save the first model here first (a new directory), then measure it")
    args = parser.parse_args()
    models = list(args.models)
    if args.resave:
        from segue.models.base import load_model

        load_model(models[0]).save(args.resave)
        models[0] = args.resave
    for model_dir in models:
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for _ in range(args.repeats):
            for mapped in (True, False):
                runs[mapped].append(measure(model_dir, mapped, args.requests, args.k))
        med = {m: {key: float(np.median([r[key] for r in rs])) for key in rs[0]} for m, rs in runs.items()}
        m, w = med[True], med[False]
        print(f"{model_dir}: load {m['load_s']:.2f} s mapped vs {w['load_s']:.2f} s read whole "
              f"({m['load_s'] / w['load_s']:.2f}x), resident {mb(m, 'load_')} vs {mb(w, 'load_')}; "
              f"first {args.requests} recommendations (k={args.k}) {m['requests_s']:.2f} vs "
              f"{w['requests_s']:.2f} s ({m['requests_s'] / w['requests_s']:.2f}x), resident after them "
              f"{mb(m)} vs {mb(w)} (medians of {args.repeats})", flush=True)


def mb(run: dict, prefix: str = "") -> str:
    """Resident memory, and the part that is the process's own (not pages of mapped files)."""
    return f"{run[prefix + 'rss'] / 2**20:,.0f} MB ({run[prefix + 'anon'] / 2**20:,.0f} own)"


if __name__ == "__main__":
    main()
