"""meanvar on a CUDA GPU: training-step speed at full MPD size, sampled vs full softmax, vs the CPU.

    python benchmarks/meanvar_gpu.py [--steps 30] [--warmup 5] [--cpu-steps 5] [--batch 512]

segue's real ``train_step`` on a model with the full MPD's catalogue (``full_scale_step`` of
``benchmarks/train_meanvar.py``: 2,262,292 songs, 734,684 albums, 295,860 artists, dim 50, synthetic
Zipf-like pairs like data=prefix), in one run:

- on the GPU: sampled softmax (4,096 log-uniform negatives) with sparse row updates, the same with dense
  AdamW, and the full softmax over every song (what the seed model describes; affordable on a GPU);
- on the CPU (``--cpu-steps``, threads = all cores): sampled + sparse, the CPU default, as the baseline.

Prints ms/step (median after warm-up; each step's loss is read back, so GPU work is included), samples/s,
peak GPU memory, the loss before and after, the GPU/CPU ratio, and hours per round of the full MPD
(data=prefix: 5 pairs per playlist). Needs a CUDA device; exits with a message otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from train_meanvar import FULL_MPD_PAIRS_PER_PLAYLIST, FULL_MPD_PLAYLISTS, full_scale_step

PAIRS_PER_ROUND = FULL_MPD_PLAYLISTS * FULL_MPD_PAIRS_PER_PLAYLIST
MODES = {"sampled-sparse": dict(sparse=True), "sampled-dense": dict(sparse=False),
         "full": dict(sparse=False, full_softmax=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--cpu-steps", type=int, default=5, help="timed CPU steps for the baseline (0 skips)")
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures meanvar on a GPU.")
    threads = os.cpu_count() or 1
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; CPU baseline on {threads} threads",
          flush=True)
    rows = []
    for mode, options in MODES.items():
        r = full_scale_step(steps=args.steps, warmup=args.warmup, threads=threads, device="cuda",
                            batch_size=args.batch, **options)
        rows.append({"device": "cuda", "mode": mode, **r})
        torch.cuda.empty_cache()
        print(rows[-1], flush=True)
    if args.cpu_steps:
        r = full_scale_step(sparse=True, steps=args.cpu_steps, warmup=2, threads=threads, batch_size=args.batch)
        rows.append({"device": "cpu", "mode": "sampled-sparse", **r})
        print(rows[-1], flush=True)
    print(f"\nfull-MPD-size step, batch {args.batch}, dim 50:")
    print(f"{'device':<6} {'mode':<15} {'ms/step':>8} {'samples/s':>10} {'h/round':>8} {'GPU GB':>7} {'loss':>15}")
    for r in rows:
        print(f"{r['device']:<6} {r['mode']:<15} {r['ms_step']:>8.1f} {r['samples_per_s']:>10,.0f} "
              f"{PAIRS_PER_ROUND / r['samples_per_s'] / 3600:>8.2f} {r['peak_gpu_gb']:>7.1f} "
              f"{r['loss_first']:>7.2f}->{r['loss_last']:<7.2f}")
    cpu = next((r for r in rows if r["device"] == "cpu"), None)
    if cpu:
        for r in rows[:-1]:
            print(f"GPU {r['mode']} vs CPU sampled-sparse: {cpu['ms_step'] / r['ms_step']:.0f}x the samples/s")


if __name__ == "__main__":
    main()
