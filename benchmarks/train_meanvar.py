"""Training speed of meanvar: segue's loop vs a faithful re-creation of the seed write-up's loop.

The write-up's loop: one playlist at a time through the model (embed its 20 seed songs, mean and variance,
two MLPs, a head over every song), full softmax, cross-entropy against one target, ``zero_grad`` and an
optimizer step per playlist. segue's loop: the same model and the same pairs (``data=seed``), in shuffled
mini-batches with CSR segment means (and, on large catalogues, a sampled softmax). Both run in this one
process on the same generated store, each part in its own child process for a clean peak-memory figure.

First the full-MPD-size training step: segue's real ``train_step`` on a model with the full catalogue
(2,262,292 songs, 734,684 albums, 295,860 artists, dim 50) and synthetic Zipf-like pairs, with dense AdamW
(the old behaviour) and with sparse row updates (the default), each timed over ``--full-steps`` steps after
warm-up, plus a few steps of the write-up's loop at that size; ms/step, samples/s, peak RSS and hours per
round of the full MPD (data=prefix: 5 pairs per playlist; data=seed: 10 per playlist of >= 30 songs).
Then the write-up's loop vs segue's on a generated store (samples/s, ratio; target >= 50x).

    .venv/bin/python benchmarks/train_meanvar.py [--full-steps 20] [--warmup 5] [--playlists 5000]
        [--seed-steps 400] [--threads 1] [--skip-small]
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
FULL_MPD_PAIRS_PER_PLAYLIST = 5  # data=prefix default pairs_per_playlist; every MPD playlist has >= 5 songs
FULL_MPD_HOLDOUT = 2000         # max_holdout playlists kept out of training


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_loop(store_path: str, steps: int, threads: int) -> dict:
    """The write-up's loop, re-created: per playlist forward, full softmax, zero_grad, backward, step."""
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from segue.data.store import Store
    from segue.models.neural.training import seed_pairs

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
    from segue.data.store import Store
    from segue.models.neural.meanvar import MeanVarConfig, build_net
    from segue.models.neural.training import train

    store = Store.open(store_path)
    config = MeanVarConfig(**{"rounds": 1, "holdout": 0.0, "threads": threads, **overrides})
    _, info = train(store, config, build_net, name="meanvar")
    record = info["history"][0]
    return {"samples_per_s": record["predictions_per_s"], "samples": record["predictions"], "seconds": record["seconds"],
            "loss": record["train_loss"], "peak_mb": _peak_mb(), "softmax": info["softmax"],
            "updates": info["updates"]}


def _zipf_ids(rng, n: int, size: int, order):
    """``size`` song ids drawn log-uniformly over a popularity rank (Zipf with exponent 1)."""
    import numpy as np

    rank = np.minimum((np.exp(rng.random(size) * np.log(n + 1.0)) - 1.0).astype(np.int64), n - 1)
    return order[rank]


def full_scale_step(sparse: bool, steps: int, warmup: int, threads: int, device: str = "cpu",
                    full_softmax: bool = False, batch_size: int | None = None) -> dict:
    """segue's real training step (``train_step``) on a model of the full MPD's size, synthetic pairs.

    Catalogue: 2,262,292 songs, 734,684 albums, 295,860 artists (random song -> album / artist maps), dim 50,
    the default config (tied head, song bias, variance MLP, batch 512, 4096 log-uniform negatives; or the
    full softmax over every song with ``full_softmax``, dense tables). Pairs like data=prefix: 1..50 seeds
    (uniform), seeds and targets drawn Zipf-like from the catalogue. Batches are built (and moved to
    ``device``) before timing; ``warmup`` steps first (first-touch of the moments), then ``steps`` timed ones.
    Each step's loss is read back, which waits for a GPU to finish, so the times cover whole steps.
    """
    import numpy as np
    import torch

    from segue.models.neural.meanvar_net import MeanVarConfig, MeanVarNet
    from segue.models.neural.training import LogUniformSampler, make_optimizer, train_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = FULL_MPD_TRACKS
    sparse = sparse and not full_softmax
    config = MeanVarConfig(full_softmax_max=n if full_softmax else 0, sparse=sparse, threads=threads,
                           batch_size=batch_size or MeanVarConfig().batch_size, title=False)
    t0 = time.perf_counter()
    net = MeanVarNet(config, n, track_album=rng.integers(0, FULL_MPD_ALBUMS, n),
                     track_artist=rng.integers(0, FULL_MPD_ARTISTS, n), n_albums=FULL_MPD_ALBUMS,
                     n_artists=FULL_MPD_ARTISTS).set_sparse(sparse).to(device)
    net.train()
    optimizer = make_optimizer(net, config, sparse=sparse)
    order = rng.permutation(n)
    counts = np.zeros(n)
    counts[order] = 1e6 / np.arange(1, n + 1)                       # popularity for the negative sampler
    sampler = None if full_softmax else LogUniformSampler(counts, device, seed=0)
    build_s = time.perf_counter() - t0
    b = config.batch_size
    batches = []
    for _ in range(warmup + steps):
        seeds = rng.integers(1, config.max_seeds + 1, b)
        tokens = _zipf_ids(rng, n, int(seeds.sum()), order)
        segments = np.repeat(np.arange(b), seeds)
        arrays = {"tokens": tokens, "segments": segments, "counts": seeds, "targets": _zipf_ids(rng, n, b, order),
                  "title_offsets": np.zeros(b + 1), "title_ids": np.zeros(0)}
        batches.append({k: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device)
                        for k, a in arrays.items()})
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for i, batch in enumerate(batches):
        t = time.perf_counter()
        losses.append(float(train_step(net, optimizer, batch, config, sampler)))
        if i >= warmup:
            times.append(time.perf_counter() - t)
    times = np.array(times)
    params = sum(p.numel() for p in net.parameters())
    return {"ms_step": 1000 * float(np.median(times)), "ms_step_mean": 1000 * float(times.mean()),
            "ms_step_min": 1000 * float(times.min()), "ms_step_max": 1000 * float(times.max()),
            "samples_per_s": b / float(np.median(times)), "steps": steps, "peak_mb": _peak_mb(), "params": params,
            "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0,
            "build_s": build_s, "tokens_per_batch": float(np.mean([len(x["tokens"]) for x in batches])),
            "loss_first": losses[0], "loss_last": losses[-1]}


def seed_loop_full(steps: int, threads: int) -> dict:
    """The write-up's loop at full MPD size (synthetic playlists): per-sample cost, for the round estimate."""
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, dim = FULL_MPD_TRACKS, 50
    embed = nn.Embedding(n, dim)
    mean_mlp = nn.Sequential(nn.Linear(dim, 100), nn.ReLU(), nn.Linear(100, dim))
    var_mlp = nn.Sequential(nn.Linear(dim, 100), nn.ReLU(), nn.Linear(100, dim))
    head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, n))
    optimizer = torch.optim.Adam([p for m in (embed, mean_mlp, var_mlp, head) for p in m.parameters()], lr=1e-3)
    playlists = torch.from_numpy(rng.integers(0, n, (steps + 1, 20)))
    targets = torch.from_numpy(rng.integers(0, n, steps + 1))
    times = []
    for i in range(steps + 1):  # the first is warm-up
        t = time.perf_counter()
        x = embed(playlists[i])
        h = mean_mlp(x.mean(0)) + var_mlp(x.var(0, unbiased=False))
        loss = F.cross_entropy(head(h).unsqueeze(0), targets[i : i + 1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - t)
    return {"samples_per_s": 1 / float(np.median(times)), "samples": steps, "peak_mb": _peak_mb()}


def _run(fn, *args):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--playlists", type=int, default=5000)
    parser.add_argument("--seed-steps", type=int, default=400, help="playlists the write-up's loop runs")
    parser.add_argument("--full-steps", type=int, default=20, help="timed steps of the full-scale model")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 by default: on a busy 2-core machine 2 threads oversubscribe and "
                        "the many small ops of a sparse step then wait on the scheduler (~18x slower measured)")
    parser.add_argument("--store", help="use this store instead of generating one")
    parser.add_argument("--skip-small", action="store_true", help="only the full-scale part")
    args = parser.parse_args()
    load_before = os.getloadavg()

    # ---- full MPD size: dense vs sparse updates ------------------------------------------------------
    dense = _run(full_scale_step, False, args.full_steps, args.warmup, args.threads)
    sparse = _run(full_scale_step, True, args.full_steps, args.warmup, args.threads)
    seed_full = _run(seed_loop_full, 3, args.threads)
    prefix_pairs = FULL_MPD_PAIRS_PER_PLAYLIST * (FULL_MPD_PLAYLISTS - FULL_MPD_HOLDOUT)
    seed_pairs = FULL_MPD_PLAYLISTS * FULL_MPD_SEED_PLAYLISTS * 10
    print(f"full MPD size: {FULL_MPD_TRACKS:,} songs, {FULL_MPD_ALBUMS:,} albums, {FULL_MPD_ARTISTS:,} artists, "
          f"dim 50, {sparse['params'] / 1e6:,.0f}M parameters; batch 512, sampled softmax (4096 negatives), "
          f"~{sparse['tokens_per_batch']:,.0f} seed tokens per batch; {args.full_steps} timed steps after "
          f"{args.warmup} warm-up, {args.threads} threads")
    print(f"round of the full MPD: data=prefix (default) {FULL_MPD_PAIRS_PER_PLAYLIST} pairs x "
          f"{FULL_MPD_PLAYLISTS - FULL_MPD_HOLDOUT:,} training playlists = {prefix_pairs:,} pairs "
          f"({prefix_pairs / 512:,.0f} steps); data=seed 10 x ~{FULL_MPD_SEED_PLAYLISTS:.0%} of 1M playlists "
          f"(>= 30 songs) = ~{seed_pairs:,.0f} pairs")
    print(f"\n{'training step':<40} {'ms/step':>9} {'(min-max)':>13} {'samples/s':>10} {'peak MB':>8} "
          f"{'h/round prefix':>15} {'h/round seed':>13}")
    for name, r in (("write-up loop (1 sample/step, full sm.)", seed_full),
                    ("segue, dense AdamW (before)", dense), ("segue, sparse rows (after)", sparse)):
        ms = r.get("ms_step", 1000 / r["samples_per_s"])
        spread = f"{r['ms_step_min']:.0f}-{r['ms_step_max']:.0f}" if "ms_step_min" in r else ""
        print(f"{name:<40} {ms:>9,.0f} {spread:>13} {r['samples_per_s']:>10,.1f} {r['peak_mb']:>8,.0f} "
              f"{prefix_pairs / r['samples_per_s'] / 3600:>15,.2f} {seed_pairs / r['samples_per_s'] / 3600:>13,.2f}")
    print(f"\nsparse over dense at full size: {sparse['samples_per_s'] / dense['samples_per_s']:,.1f}x samples/s; "
          f"segue sparse over the write-up loop: {sparse['samples_per_s'] / seed_full['samples_per_s']:,.0f}x")
    print(f"loss over the {args.warmup + args.full_steps} steps: dense {dense['loss_first']:.2f} -> "
          f"{dense['loss_last']:.2f}, sparse {sparse['loss_first']:.2f} -> {sparse['loss_last']:.2f}")

    # ---- a generated store: the write-up's loop vs segue's --------------------------------------------
    if not args.skip_small:
        with tempfile.TemporaryDirectory(prefix="segue-bench-") as tmp:
            store_path = args.store
            if store_path is None:
                from segue.data.store import build_store
                from segue.data.synth import generate_playlists

                store_path = str(Path(tmp) / "store")
                build_store(generate_playlists(args.playlists, seed=0), store_path)
            from segue.data.store import Store

            store = Store.open(store_path)
            print(f"\nstore: {store.n_playlists:,} playlists, {store.n_tracks:,} songs, {args.threads} threads")
            seed = _run(seed_loop, store_path, args.seed_steps, args.threads)
            fast = _run(segue_loop, store_path, args.threads, {"data": "seed", "init": "normal", "title": False})
            sampled = _run(segue_loop, store_path, args.threads,
                           {"data": "seed", "init": "normal", "title": False, "full_softmax_max": 0, "negatives": 8192})
            prefix = _run(segue_loop, store_path, args.threads, {})

        ratio = fast["samples_per_s"] / seed["samples_per_s"]
        rows = [("write-up loop (1 playlist/step, full softmax)", seed),
                ("segue data=seed, full softmax", fast),
                ("segue data=seed, sampled softmax (8192 neg.)", sampled),
                ("segue default (data=prefix), full softmax", prefix)]
        print(f"\n{'loop':<48} {'samples/s':>11} {'samples':>9} {'seconds':>8} {'peak MB':>8}")
        for name, r in rows:
            print(f"{name:<48} {r['samples_per_s']:>11,.0f} {r['samples']:>9,} {r['seconds']:>8.1f} "
                  f"{r['peak_mb']:>8.0f}")
        print(f"\nspeed-up of segue (data=seed, full softmax) over the write-up's loop: {ratio:,.0f}x (target >= 50x)")
        print(f"write-up loop loss (first 50 -> last 50 samples): {seed['loss_first_50']:.2f} -> "
              f"{seed['loss_last_50']:.2f}")
    print(f"\nload average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
