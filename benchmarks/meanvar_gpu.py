"""meanvar on a CUDA GPU: training-step speed at full MPD size, sampled vs full softmax, vs the CPU.

    python benchmarks/meanvar_gpu.py [--steps 30] [--warmup 5] [--cpu-steps 5] [--batch 512]

segue's real ``train_step`` on a model with the full MPD's catalogue (2,262,292 songs, 734,684 albums,
295,860 artists, dim 50) and synthetic Zipf-like pairs like data=prefix (1..50 seeds), in one run:

- on the GPU: sampled softmax (4,096 log-uniform negatives) with sparse row updates, the same with dense
  AdamW, and the full softmax over every song (what the seed model describes; affordable on a GPU);
- on the CPU (``--cpu-steps``, threads = all cores): sampled + sparse, the CPU default, as the baseline.

Prints ms/step (median after warm-up, CUDA synchronised), samples/s, peak GPU memory, the loss before and
after, the GPU/CPU ratio, and hours per round of the full MPD (data=prefix: 5 pairs per playlist).
Needs a CUDA device; exits with a message otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

FULL_MPD_TRACKS = 2_262_292
FULL_MPD_ALBUMS = 734_684
FULL_MPD_ARTISTS = 295_860
PAIRS_PER_ROUND = 1_000_000 * 5


def _zipf_ids(rng, n: int, size: int, order: np.ndarray) -> np.ndarray:
    rank = np.minimum((np.exp(rng.random(size) * np.log(n + 1.0)) - 1.0).astype(np.int64), n - 1)
    return order[rank]


def step_timing(device: str, mode: str, steps: int, warmup: int, batch: int) -> dict:
    """mode: ``sampled-sparse``, ``sampled-dense`` or ``full`` (full softmax, dense tables)."""
    from segue.models.meanvar import MeanVarConfig, MeanVarNet
    from segue.models.meanvar_train import LogUniformSampler, make_optimizer, train_step

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = FULL_MPD_TRACKS
    sampled = mode != "full"
    sparse = mode == "sampled-sparse"
    config = MeanVarConfig(full_softmax_max=0 if sampled else n + 1, sparse=sparse, batch_size=batch)
    net = MeanVarNet(config, n, track_album=rng.integers(0, FULL_MPD_ALBUMS, n),
                     track_artist=rng.integers(0, FULL_MPD_ARTISTS, n), n_albums=FULL_MPD_ALBUMS,
                     n_artists=FULL_MPD_ARTISTS).set_sparse(sparse).to(device)
    net.train()
    optimizer = make_optimizer(net, config, sparse=sparse)
    order = rng.permutation(n)
    counts = np.zeros(n)
    counts[order] = 1e6 / np.arange(1, n + 1)
    sampler = LogUniformSampler(counts, device, seed=0) if sampled else None
    batches = []
    for _ in range(warmup + steps):
        seeds = rng.integers(1, config.max_seeds + 1, batch)
        tokens = _zipf_ids(rng, n, int(seeds.sum()), order)
        segments = np.repeat(np.arange(batch), seeds)
        batches.append(tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device)
                             for a in (tokens, segments, seeds, _zipf_ids(rng, n, batch, order))))
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    times, losses = [], []
    for i, b in enumerate(batches):
        t = time.perf_counter()
        loss = train_step(net, optimizer, b, config, sampler)
        losses.append(float(loss))  # .item() synchronises, so the time covers the whole step
        if i >= warmup:
            times.append(time.perf_counter() - t)
    times = np.array(times)
    ms = 1000 * float(np.median(times))
    return {"device": device, "mode": mode, "ms_step": ms, "samples_per_s": batch / (ms / 1000),
            "hours_per_round": PAIRS_PER_ROUND / (batch / (ms / 1000)) / 3600,
            "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0,
            "loss_first": losses[0], "loss_last": losses[-1], "steps": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--cpu-steps", type=int, default=5, help="timed CPU steps for the baseline (0 skips)")
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures meanvar on a GPU.")
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; CPU threads {torch.get_num_threads()} "
          f"of {os.cpu_count()}", flush=True)
    rows = []
    for mode in ("sampled-sparse", "sampled-dense", "full"):
        rows.append(step_timing("cuda", mode, args.steps, args.warmup, args.batch))
        print(rows[-1], flush=True)
    if args.cpu_steps:
        rows.append(step_timing("cpu", "sampled-sparse", args.cpu_steps, 2, args.batch))
        print(rows[-1], flush=True)
    print(f"\nfull-MPD-size step, batch {args.batch}, dim 50:")
    print(f"{'device':<6} {'mode':<15} {'ms/step':>8} {'samples/s':>10} {'h/round':>8} {'GPU GB':>7} {'loss':>15}")
    for r in rows:
        print(f"{r['device']:<6} {r['mode']:<15} {r['ms_step']:>8.1f} {r['samples_per_s']:>10,.0f} "
              f"{r['hours_per_round']:>8.2f} {r['peak_gpu_gb']:>7.1f} {r['loss_first']:>7.2f}->{r['loss_last']:<7.2f}")
    cpu = next((r for r in rows if r["device"] == "cpu"), None)
    if cpu:
        for r in rows[:-1]:
            print(f"GPU {r['mode']} vs CPU sampled-sparse: {cpu['ms_step'] / r['ms_step']:.0f}x the samples/s")


if __name__ == "__main__":
    main()
