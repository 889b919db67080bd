"""``top_k`` with ties broken by track id against the position-tied top-k it replaced, on the same blocks.

    .venv/bin/python benchmarks/top_k.py --rows 512 --tracks 100000 --k 500

Baseline: ``argpartition`` then a stable ``argsort`` of the partition (equal scores come out in whatever
order the partition left them, so results depend on the batch). segue: :func:`segue.models.base.top_k`.
Three blocks: distinct random scores (ties are rare, as in seeded rows), scores rounded to 2 decimals
(ties straddle the k-th place in every row: the worst case), and integer popularity counts of a Zipf-like
catalogue (what title-only and popular rows look like). Best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from segue.models.base import top_k  # noqa: E402


def position_tied_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int32), np.take_along_axis(part_scores, order, axis=1)


def best_seconds(fn, scores: np.ndarray, k: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(scores, k)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    random = rng.random((args.rows, args.tracks), dtype=np.float32)
    counts = np.log1p(np.minimum(rng.zipf(1.6, size=args.tracks), 10**6)).astype(np.float32)
    blocks = {"distinct": random, "rounded (ties at k)": np.round(random, 2),
              "popularity counts": np.tile(counts, (args.rows, 1))}
    print(f"{args.rows} x {args.tracks:,} float32 blocks, k={args.k}, best of {args.repeat}")
    print(f"{'block':<22}{'baseline s':>12}{'segue s':>10}{'ratio':>8}")
    for name, scores in blocks.items():
        base = best_seconds(position_tied_top_k, scores, args.k, args.repeat)
        ours = best_seconds(top_k, scores, args.k, args.repeat)
        print(f"{name:<22}{base:>12.3f}{ours:>10.3f}{ours / base:>7.2f}x")


if __name__ == "__main__":
    main()
