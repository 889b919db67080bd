"""Scoring speed: vectorised challenge metrics vs a plain per-playlist Python loop, same inputs.

    .venv/bin/python benchmarks/score.py [--playlists 10000] [--k 500]

Makes a challenge-sized workload (10,000 playlists x 500 recommendations over a 200,000-track
vocabulary, ground truth of 5..240 held-out tracks, about a fifth of each playlist's answers planted
in its recommendations, some duplicates and -1 padding), scores it with ``segue.evaluate.metrics``
(all six metrics incl. the artist credit, plus the bootstrap CIs) and with the straightforward loop
(``reference_metrics``), checks they agree, and prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from segue.evaluate.metrics import METRICS, compute_metrics, reference_metrics, summarise


def workload(n: int, k: int, n_tracks: int = 200_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 241, size=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=indptr[1:])
    indices = rng.integers(0, n_tracks, size=indptr[-1])
    recs = rng.integers(0, n_tracks, size=(n, k))
    for row in range(n):  # plant some hits at random ranks (setup, not timed)
        truth = indices[indptr[row] : indptr[row + 1]]
        planted = truth[: max(1, len(truth) // 5)]
        recs[row, rng.choice(k, size=len(planted), replace=False)] = planted
    recs[rng.random((n, k)) < 0.01] = -1
    recs[:, -1] = recs[:, 0]  # a duplicate in every row
    artists = rng.integers(-1, n_tracks // 10, size=n_tracks)
    return recs, indptr, indices, artists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playlists", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=500)
    args = parser.parse_args()
    recs, indptr, indices, artists = workload(args.playlists, args.k)
    categories = np.arange(args.playlists) % 10 + 1

    start = time.perf_counter()
    fast = compute_metrics(recs, indptr, indices, track_artist=artists)
    t_metrics = time.perf_counter() - start
    summary = summarise(fast, categories, ci=True)
    t_fast = time.perf_counter() - start

    recs_list = recs.tolist()
    truths = [indices[indptr[i] : indptr[i + 1]].tolist() for i in range(args.playlists)]
    start = time.perf_counter()
    slow = reference_metrics(recs_list, truths, artists)
    t_slow = time.perf_counter() - start

    for metric in METRICS:
        np.testing.assert_allclose(fast[metric], slow[metric], rtol=1e-9, atol=1e-12, err_msg=metric)
    print(f"workload: {args.playlists:,} playlists x {args.k} recommendations, "
          f"{len(indices):,} ground-truth entries; R-precision {summary['overall']['r_precision']:.4f}, "
          f"NDCG (Spotify's challenge definition) {summary['overall']['ndcg']:.4f}")
    print(f"baseline (per-playlist Python loop, metrics only):     {t_slow:8.2f} s")
    print(f"segue vectorised metrics:                              {t_metrics:8.2f} s")
    print(f"segue vectorised metrics + per-category + bootstrap CI:{t_fast:8.2f} s")
    print(f"speed-up (metrics only): {t_slow / t_metrics:.1f}x; results agree on all {len(METRICS)} metrics")


if __name__ == "__main__":
    main()
