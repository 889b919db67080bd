"""`segue train als`'s fit against `implicit` alone on the same matrix, in one run, with the ratio.

    python benchmarks/als_fit.py [--playlists 20000] [--store DIR] [--repeats 2] [--set key=value ...]

(a) implicit alone: ``AlternatingLeastSquares(...).fit(C)`` on the confidence matrix segue's ALS builds
    (built beforehand, outside the timing), with the same factors, iterations, threads and seed;
(b) segue: ``ALS(config).fit(store)`` with ``fallback=none`` (the title fallback is its own model and its
    own step), i.e. everything the fit does around implicit: the binary playlists x tracks matrix from the
    store's arrays, track popularity, BM25 weights, and the factors kept.

The two alternate (a b a b ...), so a busy shared machine slows both alike; the best of each is compared.
Without ``--store`` the data is ``--playlists`` generated playlists (the realistic profile), built in a
temporary store.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from segue.config import apply_overrides
from segue.data.store import Store, build_store
from segue.data.synth import generate_playlists
from segue.models.als import ALS, ALSConfig


def implicit_alone(config: ALSConfig, confidence: sp.csr_matrix) -> float:
    from implicit.cpu.als import AlternatingLeastSquares

    started = time.perf_counter()
    with threadpool_limits(1, "blas"):
        AlternatingLeastSquares(factors=config.factors, regularization=config.regularization, alpha=config.alpha,
                                iterations=config.iterations, random_state=config.seed,
                                num_threads=config.threads, calculate_training_loss=False,
                                ).fit(confidence, show_progress=False)
    return time.perf_counter() - started


def segue_fit(config: ALSConfig, store: Store) -> float:
    started = time.perf_counter()
    ALS(config).fit(store)
    return time.perf_counter() - started


def confidence_of(config: ALSConfig, store: Store) -> sp.csr_matrix:
    """The matrix segue's fit hands to implicit (built the way ALS._fit builds it)."""
    model = ALS(dataclasses.replace(config, iterations=1))
    model.fit(store)  # sets the training statistics _weights reads
    x = store.csr(binary=True)
    return sp.csr_matrix((model._weights(x.indptr, x.indices), x.indices, x.indptr), shape=x.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--playlists", type=int, default=20_000)
    parser.add_argument("--store", type=Path, help="a store to fit on (default: generated playlists)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="ALS setting key=value")
    args = parser.parse_args()
    config = apply_overrides(ALSConfig(fallback="none"), args.set)
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            store = Store.open(args.store)
        else:
            store = build_store(generate_playlists(args.playlists, seed=0), Path(tmp) / "store")
        store.indptr, store.indices  # read the arrays once, outside the timings  # noqa: B018
        confidence = confidence_of(config, store)
        print(f"{store.n_playlists:,} playlists, {store.n_tracks:,} tracks, {confidence.nnz:,} nonzeros; "
              f"factors {config.factors}, iterations {config.iterations}, threads {config.threads or 'all'}")
        times: dict[str, list[float]] = {"implicit alone": [], "segue als fit": []}
        for _ in range(args.repeats):
            times["implicit alone"].append(implicit_alone(config, confidence))
            times["segue als fit"].append(segue_fit(config, store))
    for name, values in times.items():
        print(f"{name:15s} " + "  ".join(f"{v:6.2f} s" for v in values))
    best = {name: min(values) for name, values in times.items()}
    print(f"ratio segue / implicit (best of {args.repeats}): {best['segue als fit'] / best['implicit alone']:.3f}")
    print(f"ratio of the means: {np.mean(times['segue als fit']) / np.mean(times['implicit alone']):.3f}")


if __name__ == "__main__":
    main()
