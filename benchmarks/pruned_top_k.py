"""Embedding models' top-k from the songs with the longest vectors (segue.models._dot) vs the dense scores.

    .venv/bin/python benchmarks/pruned_top_k.py MODEL_DIR --split SPLIT_DIR [--playlists 1000] [--k 500]

Takes the seeded playlists of a challenge split (the first ``--playlists`` of them, titles as the challenge
gives them), recommends ``k`` songs with the model as segue does (the pruned path where it is exact) and with
pruning switched off (every song scored, the baseline), in the same process, and prints both times, the
ratio, the share of playlists the pruned path answered, how far into the catalogue it had to look (the
level that answered each playlist), and whether the ids agree (they must, up to exact ties whose products
round apart). Run it on an ``als`` or neural model trained on a large store (e.g. the 1M-playlist run of
benchmarks/full_scale.py); on a small catalogue the pruned path is off and the ratio is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import segue.models._dot as dot  # noqa: E402
from segue.evaluate.runner import load_split, seeds_for_store  # noqa: E402
from segue.models.base import open_model_and_store, take_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--split", required=True)
    parser.add_argument("--playlists", type=int, default=1000)
    parser.add_argument("--k", type=int, default=500)
    args = parser.parse_args()

    split = load_split(args.split)
    model, store = open_model_and_store(args.model, None)
    indptr, indices, _ = seeds_for_store(split.challenge, store)
    rows = np.flatnonzero(np.diff(indptr) > 0)[: args.playlists]
    seed_ptr, seed_idx, titles = take_rows(indptr, indices, list(split.challenge.names), rows)
    seeds = (seed_ptr, seed_idx)

    started = time.perf_counter()
    norm_order = model._norm_order() if hasattr(model, "_norm_order") else None
    build_seconds = time.perf_counter() - started
    if norm_order is None:
        raise SystemExit(f"{args.model}: no pruned path for this model or catalogue ({store.n_tracks:,} songs)")
    answered = []  # playlists the pruned path answered, per call
    pruned_top_k = dot.pruned_top_k

    def counting(norm_order, queries, *rest, **options):
        found = pruned_top_k(norm_order, queries, *rest, **options)
        answered.append(int(found[2].sum()))
        return found

    module = __import__(type(model)._pruned_top_k.__module__, fromlist=["pruned_top_k"])
    module.pruned_top_k = counting
    model.recommend(take_rows(seed_ptr, seed_idx, titles, np.arange(min(8, len(rows))))[:2], k=args.k)  # warm up
    answered.clear()
    started = time.perf_counter()
    ids, _ = model.recommend(seeds, k=args.k, titles=titles)
    pruned_seconds = time.perf_counter() - started
    share = sum(answered) / len(rows)

    within = []  # playlists answered when the head stops at each level in turn
    for level in range(1, len(norm_order.levels) + 1):
        model._norm = (dataclasses.replace(norm_order, levels=norm_order.levels[:level],
                                           norm_past=norm_order.norm_past[:level],
                                           bias_past=norm_order.bias_past[:level]),)
        answered.clear()
        model.recommend(seeds, k=args.k, titles=titles)
        within.append(sum(answered))
    model._norm = (None,)  # pruning off: the dense baseline
    started = time.perf_counter()
    dense_ids, _ = model.recommend(seeds, k=args.k, titles=titles)
    dense_seconds = time.perf_counter() - started

    print(f"{model.name} on {store.n_tracks:,} songs, {len(rows):,} seeded challenge playlists, k={args.k}")
    print(f"order built once in {build_seconds:.2f} s; levels {', '.join(f'{m:,}' for m in norm_order.levels)} songs")
    print(f"answered by the pruned path: {share:.1%}; within the first "
          + ", ".join(f"{m:,} songs: {n / len(rows):.1%}" for m, n in zip(norm_order.levels, within)))
    print(f"same ids as dense: {(ids == dense_ids).all(axis=1).mean():.1%} of playlists, "
          f"{(ids == dense_ids).mean():.4%} of entries")
    print(f"{'path':<8}{'seconds':>10}{'ms/playlist':>14}")
    print(f"{'dense':<8}{dense_seconds:>10.2f}{1000 * dense_seconds / len(rows):>14.2f}")
    print(f"{'pruned':<8}{pruned_seconds:>10.2f}{1000 * pruned_seconds / len(rows):>14.2f}")
    print(f"ratio pruned/dense: {pruned_seconds / dense_seconds:.2f}x")


if __name__ == "__main__":
    main()
