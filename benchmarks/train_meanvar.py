"""Training speed of meanvar: segue's loop vs a faithful re-creation of the seed write-up's loop.

The write-up's loop: one playlist at a time through the model (embed its 20 seed songs, mean and variance,
two MLPs, a head over every song), full softmax, cross-entropy against one target, ``zero_grad`` and an
optimizer step per playlist. segue's loop: the same model and the same pairs (``data=seed``), in shuffled
mini-batches with CSR segment means (and, on large catalogues, a sampled softmax). Both run in this one
process on the same generated store, each part in its own child process for a clean peak-memory figure.

    .venv/bin/python benchmarks/train_meanvar.py [--playlists 5000] [--seed-steps 400] [--threads 2]

Prints samples/s of both, the ratio, peak memory, and the extrapolated time per round on the full MPD.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

FULL_MPD_TRACKS = 2_262_292
FULL_MPD_PLAYLISTS = 1_000_000
FULL_MPD_ALBUMS = 734_684
FULL_MPD_ARTISTS = 295_860
FULL_MPD_SEED_PLAYLISTS = 0.60  # approximate share of MPD playlists with >= 30 tracks (median length 49)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_loop(store_path: str, steps: int, threads: int) -> dict:
    """The write-up's loop, re-created: per playlist forward, full softmax, zero_grad, backward, step."""
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from segue.data.store import Store
    from segue.models.meanvar_train import seed_pairs

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    store = Store.open(store_path)
    pairs = seed_pairs(store.indptr, store.indices, np.arange(store.n_playlists), 10)
    dim = 50
    embed = nn.Embedding(store.n_tracks, dim)
    mean_mlp = nn.Sequential(nn.Linear(dim, 100), nn.ReLU(), nn.Linear(100, dim))
    var_mlp = nn.Sequential(nn.Linear(dim, 100), nn.ReLU(), nn.Linear(100, dim))
    head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, store.n_tracks))
    params = [p for m in (embed, mean_mlp, var_mlp, head) for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    playlists = torch.from_numpy(
        np.stack([store.indices[s : s + 20] for s in pairs.start[:steps]]).astype(np.int64))  # (steps, 20)
    targets = torch.from_numpy(pairs.target[:steps])
    losses = []
    t0 = time.perf_counter()
    for i in range(min(steps, len(targets))):
        x = embed(playlists[i])                                             # (20, dim)
        h = mean_mlp(x.mean(0)) + var_mlp(x.var(0, unbiased=False))         # (dim,)
        logits = head(h)                                                    # (n_tracks,)
        loss = F.cross_entropy(logits.unsqueeze(0), targets[i : i + 1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - t0
    n = len(losses)
    return {"samples_per_s": n / seconds, "samples": n, "seconds": seconds, "peak_mb": _peak_mb(),
            "loss_first_50": float(np.mean(losses[:50])), "loss_last_50": float(np.mean(losses[-50:]))}


def segue_loop(store_path: str, threads: int, overrides: dict) -> dict:
    import torch

    from segue.data.store import Store
    from segue.models.meanvar import MeanVarConfig
    from segue.models.meanvar_train import build_net, make_optimizer, train

    store = Store.open(store_path)
    config = MeanVarConfig(**{"rounds": 1, "holdout": 0.0, "threads": threads, **overrides})
    net, info = train(store, config)
    record = info["history"][0]
    # optimizer-step time alone, to scale to the full MPD's parameter count
    net = build_net(store, config, None) if config.init != "als" else net
    optimizer = make_optimizer(net, config)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    t0 = time.perf_counter()
    for _ in range(5):
        optimizer.step()
    adam_s = (time.perf_counter() - t0) / 5
    n_params = sum(p.numel() for p in net.parameters())
    return {"samples_per_s": record["pairs_per_s"], "samples": record["pairs"], "seconds": record["seconds"],
            "loss": record["train_loss"], "peak_mb": _peak_mb(), "adam_step_s": adam_s, "params": n_params,
            "softmax": info["softmax"], "steps": record["pairs"] // config.batch_size}


def _run(fn, *args):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--playlists", type=int, default=5000)
    parser.add_argument("--seed-steps", type=int, default=400, help="playlists the write-up's loop runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--store", help="use this store instead of generating one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="segue-bench-") as tmp:
        store_path = args.store
        if store_path is None:
            from segue.data.store import build_store
            from segue.data.synth import generate_playlists

            store_path = str(Path(tmp) / "store")
            build_store(generate_playlists(args.playlists, seed=0), store_path)
        from segue.data.store import Store

        store = Store.open(store_path)
        print(f"store: {store.n_playlists:,} playlists, {store.n_tracks:,} songs, {args.threads} threads")
        seed = _run(seed_loop, store_path, args.seed_steps, args.threads)
        fast = _run(segue_loop, store_path, args.threads, {"data": "seed"})
        sampled = _run(segue_loop, store_path, args.threads,
                       {"data": "seed", "full_softmax_max": 0, "negatives": 8192})
        prefix = _run(segue_loop, store_path, args.threads, {})

    ratio = fast["samples_per_s"] / seed["samples_per_s"]
    rows = [("write-up loop (1 playlist/step, full softmax)", seed),
            ("segue data=seed, full softmax", fast),
            ("segue data=seed, sampled softmax (8192 neg.)", sampled),
            ("segue default (data=prefix), full softmax", prefix)]
    print(f"\n{'loop':<48} {'samples/s':>11} {'samples':>9} {'seconds':>8} {'peak MB':>8}")
    for name, r in rows:
        print(f"{name:<48} {r['samples_per_s']:>11,.0f} {r['samples']:>9,} {r['seconds']:>8.1f} {r['peak_mb']:>8.0f}")
    print(f"\nspeed-up of segue (data=seed, full softmax) over the write-up's loop: {ratio:,.0f}x")
    print(f"write-up loop loss (first 50 -> last 50 samples): {seed['loss_first_50']:.2f} -> "
          f"{seed['loss_last_50']:.2f}")

    # ---- extrapolation to the full MPD -------------------------------------------------------------
    scale = FULL_MPD_TRACKS / store.n_tracks
    seed_pairs_full = FULL_MPD_PLAYLISTS * FULL_MPD_SEED_PLAYLISTS * 10
    prefix_pairs_full = FULL_MPD_PLAYLISTS * 10
    # the write-up's per-sample cost grows with the catalogue (head matmul + Adam over every parameter)
    seed_round_h = seed_pairs_full / (seed["samples_per_s"] / scale) / 3600
    full_params = 50 * (FULL_MPD_TRACKS + FULL_MPD_ALBUMS + FULL_MPD_ARTISTS) + FULL_MPD_TRACKS
    adam_full = sampled["adam_step_s"] * full_params / sampled["params"]
    step_compute = 1 / sampled["samples_per_s"] * 512 - sampled["adam_step_s"]
    per_step = max(step_compute, 0) + adam_full
    sampled_round_h = prefix_pairs_full / 512 * per_step / 3600
    print(f"\nfull MPD ({FULL_MPD_TRACKS:,} songs) per round, extrapolated from this machine:")
    print(f"  write-up loop, data=seed ({seed_pairs_full:,.0f} samples, cost x{scale:,.0f} per sample): "
          f"{seed_round_h:,.0f} h")
    print(f"  segue sampled softmax, data=prefix ({prefix_pairs_full:,.0f} pairs, {prefix_pairs_full / 512:,.0f} "
          f"steps; Adam over {full_params / 1e6:,.0f}M parameters {adam_full:.2f} s/step): {sampled_round_h:,.1f} h")
    print("  memory (tied head, track+album+artist, AdamW, dense grads): "
          f"{full_params * 4 * 4 / 2**30:.1f} GiB of parameters/grads/moments + ~35 MB per sampled step")


if __name__ == "__main__":
    main()
