"""Training machinery shared by segue's neural models: data regimes, sampled softmax, sparse row updates,
the loop with early stopping, and data-parallel training (the torchrun launcher is :mod:`.distributed`).

Data regimes (``data`` config), both built as arrays, never a Python loop per pair. A training pair is the
seed songs (a contiguous slice of the store's ``indices``: ``start``, ``length``) plus one target song:

* ``seed`` -- the write-up's data: playlists with at least 30 songs, cut to their first 30; songs 1-20 are
  the input, and the k-th of ``training_sets`` (<= 10) training sets uses song 20+k as the target.
* ``prefix`` (default) -- the improvement the authors asked for: every playlist with at least 2 songs; each
  round draws ``pairs_per_playlist`` prefixes of 1..``max_seeds`` songs, each with a target that follows the
  prefix (``target=later``: any later song, as in the challenge where every held-out song counts;
  ``target=next``: the very next song).

The loop: shuffled mini-batches, AdamW (row-wise sparse for the tables under the sampled softmax, below),
gradients zeroed each step, a held-out share of the training playlists scored after each round
(full-softmax loss and recall@100 of the target, seeds excluded), early stopping with ``patience`` and the
best round's weights restored. Full softmax while the catalogue has at most ``full_softmax_max`` songs
(by default 50,000 on CPU, 4,000,000 on CUDA: on an H200 the full MPD's 2.26M-song softmax costs 37 ms a
step); above that a sampled softmax: ``negatives`` shared negatives per batch drawn log-uniformly over
the popularity rank, every logit corrected by -log(expected count) (log-Q) and accidental hits masked,
which keeps a step's memory independent of the catalogue.

Sparse updates (``sparse``, on by default; used with the sampled softmax only): a step touches the batch's
seed, target and negative songs -- about 17k of 2.26M song rows at batch 512 -- and their albums and
artists. The tables (and the per-song bias) then take sparse gradients and :class:`RowAdamW` updates only
the touched rows: their two moments and their weights, with bias correction by the global step (lazy Adam,
as TensorFlow's LazyAdam and torch's SparseAdam). Rows a batch does not touch keep their moments
unchanged instead of decaying them, which is the usual lazy-Adam approximation. ``embedding_decay`` is
decoupled decay applied to the touched rows only (a row is decayed when it is used, not every step); the
bias is never decayed. The MLPs keep dense AdamW. The full softmax (small catalogues) touches every row
anyway and stays dense AdamW throughout. Under DDP the sparse gradients are all-reduced as sparse tensors
(DistributedDataParallel expects them from ``nn.Embedding(sparse=True)``); tested with gloo on CPU. NCCL's
sparse all-reduce is untested here: should it fail on GPUs, train with ``sparse=false``.

Memory on the full MPD (2,262,292 songs, dim 50, float32): song table 2.26M x 50 x 4 B = 452 MB; with
album (734,684) and artist (295,860) tables 658 MB of parameters with the song bias. Dense AdamW keeps
two moments and a dense gradient: x4 = 2.6 GB (tied head; a separate head adds 1.8 GB), and reads and
writes all of it every step. Sparse: parameters + moments (x3 = 2.0 GB) and gradients of the touched rows
only. Full softmax would need batch x 2.26M logits and their gradient (512 x 2.26M x 4 B x 2 = 9.3 GB) per
step; the sampled softmax needs 512 x 4096 x 4 B x 2 = 17 MB. So the full MPD trains in about 3 GB.

Distributed: ``python -m torch.distributed.run --standalone --nproc_per_node N -m
segue.models.neural.distributed --model NAME --store S --out M --config cfg.json`` (what
:func:`segue.models.neural.distributed.launch` runs). Each rank takes its
share of every round's shuffled pairs (equal step counts), DistributedDataParallel averages gradients (gloo
on CPU, NCCL on GPUs), validation sums are all-reduced, rank 0 writes the model directory.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import save_file

from segue.data.store import Store
from segue.errors import InputError, ModelError
from segue.io import atomic_path, write_json
from segue.models.neural.config import NeuralConfig, full_softmax_limit, resolve_device
from segue.progress import progress_task

log = logging.getLogger(__name__)

SEED_LENGTH = 30     # the write-up cuts playlists to their first 30 songs ...
SEED_INPUTS = 20     # ... and feeds songs 1-20 to the model
VAL_TOP = 100


@dataclasses.dataclass
class Pairs:
    """Training pairs as arrays: seeds are ``indices[start : start + length]``; ``target`` one song each."""

    start: np.ndarray    # (p,) int64 offset into the store's indices
    length: np.ndarray   # (p,) int64 number of seed songs (>= 1)
    target: np.ndarray   # (p,) int64 target song id

    def __len__(self) -> int:
        return len(self.target)

    def take(self, sel: np.ndarray) -> "Pairs":
        return Pairs(self.start[sel], self.length[sel], self.target[sel])


def select_playlists(store: Store, config: NeuralConfig) -> np.ndarray:
    """Rows of the playlists training may use: the first ``files`` x 1000 (the write-up's slices) or all."""
    n = store.n_playlists if config.files <= 0 else min(store.n_playlists, config.files * 1000)
    return np.arange(n, dtype=np.int64)


def split_holdout(rows: np.ndarray, config: NeuralConfig, rng: np.random.Generator):
    """(train rows, held-out rows): a random ``holdout`` share of the playlists, at most ``max_holdout``."""
    n_val = min(config.max_holdout, int(round(len(rows) * config.holdout)))
    if n_val == 0 or len(rows) - n_val < 1:
        return rows, rows[:0]
    perm = rng.permutation(len(rows))
    return np.sort(rows[perm[n_val:]]), np.sort(rows[perm[:n_val]])


def seed_pairs(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, training_sets: int = 10) -> Pairs:
    """The write-up's ten training sets: 20 seed songs, target song 20+k (k = 1..training_sets)."""
    lengths = indptr[rows + 1] - indptr[rows]
    keep = rows[lengths >= SEED_LENGTH]
    start = np.repeat(indptr[keep], training_sets)
    offset = np.tile(np.arange(SEED_INPUTS, SEED_INPUTS + training_sets, dtype=np.int64), len(keep))
    return Pairs(start, np.full(len(start), SEED_INPUTS, np.int64), indices[start + offset].astype(np.int64))


def prefix_pairs(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, config: NeuralConfig,
                 rng: np.random.Generator) -> Pairs:
    """``pairs_per_playlist`` (prefix of 1..max_seeds songs, a following song) per playlist of >= 2 songs."""
    lengths = indptr[rows + 1] - indptr[rows]
    keep = lengths >= 2
    rows, lengths = rows[keep], lengths[keep]
    per = config.pairs_per_playlist
    starts = np.repeat(indptr[rows], per)
    n = np.repeat(lengths, per)
    top = np.minimum(n - 1, config.max_seeds)
    seeds = 1 + (rng.random(len(n)) * top).astype(np.int64)                 # 1..top
    if config.target == "next":
        pos = seeds
    else:
        pos = seeds + (rng.random(len(n)) * (n - seeds)).astype(np.int64)   # seeds..n-1
    return Pairs(starts, seeds, indices[starts + pos].astype(np.int64))


def build_pairs(store: Store, rows: np.ndarray, config: NeuralConfig, rng: np.random.Generator) -> Pairs:
    if config.data == "seed":
        return seed_pairs(store.indptr, store.indices, rows, config.training_sets)
    return prefix_pairs(store.indptr, store.indices, rows, config, rng)


def collate(indices: np.ndarray, pairs: Pairs, device) -> tuple[torch.Tensor, ...]:
    """A batch of pairs -> (tokens (T,), segments (T,), counts (b,), targets (b,)) tensors."""
    counts = pairs.length
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    segments = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    positions = np.repeat(pairs.start - first, counts) + np.arange(total, dtype=np.int64)
    tokens = indices[positions].astype(np.int64)
    to = lambda a: torch.from_numpy(a).to(device, non_blocking=True)  # noqa: E731
    return to(tokens), to(segments), to(counts.astype(np.int64)), to(pairs.target.astype(np.int64))


# ---- initialisation -------------------------------------------------------------------------------
BuildNet = Callable[[Store, NeuralConfig, np.ndarray], torch.nn.Module]  # (store, config, train rows) -> net

def als_item_factors(store: Store, rows: np.ndarray, config: NeuralConfig) -> np.ndarray:
    """Item factors (n_tracks, dim) of implicit's ALS fitted on the training playlists."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = store.csr(binary=True)[rows]
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=config.dim, regularization=0.05, iterations=15, alpha=1.0,
                                      random_state=config.seed, num_threads=max(0, config.threads),
                                      calculate_training_loss=False)
        als.fit(matrix.tocsr(), show_progress=False)
    return np.asarray(als.item_factors, dtype=np.float32)[:, : config.dim]


def warm_start_from_als(table: torch.nn.Embedding, store: Store, rows: np.ndarray, config: NeuralConfig) -> None:
    """Song vectors from ALS item factors fitted on ``rows``, rescaled to the random init's size (songs
    ALS never saw keep a small jitter)."""
    factors = torch.from_numpy(als_item_factors(store, rows, config))
    with torch.no_grad():
        target_std = table.weight.std()
        factors = factors * (target_std / factors[factors.abs().sum(1) > 0].std().clamp_min(1e-8))
        table.weight.copy_(factors + 0.1 * table.weight)


class RowAdamW(torch.optim.Optimizer):
    """AdamW for tables with sparse gradients that updates only the rows a step touches (lazy Adam).

    Per touched row r (duplicates summed): m[r] = b1 m[r] + (1-b1) g, v[r] = b2 v[r] + (1-b2) g^2,
    w[r] *= 1 - lr wd, w[r] -= lr / (1-b1^t) * m[r] / (sqrt(v[r] / (1-b2^t)) + eps), t = the table's step
    count -- torch's AdamW formula restricted to the touched rows. Deterministic on CPU.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if not grad.is_sparse:
                    raise ModelError("RowAdamW expects sparse gradients; build the net with set_sparse(True).")
                grad = grad.coalesce()
                rows, values = grad.indices()[0], grad.values()                       # (r,), (r, dim)
                if rows.numel() == 0:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                t = state["step"]
                # rows are unique after coalesce, so adding each row's change sets it (index_add_ is the
                # fastest scatter on CPU)
                m = state["exp_avg"].index_select(0, rows)
                delta_m = values.sub(m).mul_(1 - beta1)
                m.add_(delta_m)
                v = state["exp_avg_sq"].index_select(0, rows)
                delta_v = values.square().sub_(v).mul_(1 - beta2)
                v.add_(delta_v)
                state["exp_avg"].index_add_(0, rows, delta_m)
                state["exp_avg_sq"].index_add_(0, rows, delta_v)
                denom = (v / (1 - beta2 ** t)).sqrt_().add_(eps)
                delta_w = m.div_(denom).mul_(-lr / (1 - beta1 ** t))
                if decay:
                    delta_w.sub_(param.index_select(0, rows), alpha=lr * decay)
                param.index_add_(0, rows, delta_w)
        return None


class Optimizers:
    """Several optimizers stepped as one (row-wise sparse tables + dense AdamW for the rest)."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = [o for o in optimizers if o is not None]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()


def make_optimizer(net: torch.nn.Module, config: NeuralConfig, sparse: bool = False) -> Optimizers:
    """Dense: AdamW over everything. Sparse (the net in sparse mode): :class:`RowAdamW` for the tables and
    the song bias, AdamW for the MLPs. Tables decay by ``embedding_decay``, MLP weights by ``weight_decay``,
    biases (MLP and per-song) not at all."""
    tables, bias, weights, flat = [], [], [], []
    for name, param in net.named_parameters():
        if name.endswith("_emb.weight"):
            tables.append(param)
        elif name == "out_bias.weight":
            bias.append(param)
        elif param.ndim >= 2:
            weights.append(param)
        else:
            flat.append(param)
    dense = [{"params": weights, "weight_decay": config.weight_decay},
             {"params": flat, "weight_decay": 0.0}]
    rows = [{"params": tables, "weight_decay": config.embedding_decay},
            {"params": bias, "weight_decay": 0.0}]
    rows = [g for g in rows if g["params"]]
    if not sparse:
        return Optimizers(torch.optim.AdamW([g for g in rows + dense if g["params"]], lr=config.lr))
    return Optimizers(RowAdamW(rows, lr=config.lr) if rows else None,
                      torch.optim.AdamW([g for g in dense if g["params"]], lr=config.lr))


# ---- sampled softmax ---------------------------------------------------------------------------------
class LogUniformSampler:
    """Draws songs log-uniformly over their popularity rank; ``log_q`` is each song's log-probability."""

    def __init__(self, counts: np.ndarray, device, seed: int) -> None:
        n = len(counts)
        order = np.argsort(-counts, kind="stable")
        ranks = np.empty(n, dtype=np.int64)
        ranks[order] = np.arange(n)
        self.n = n
        self.order = torch.from_numpy(order.astype(np.int64)).to(device)
        self.log_q = torch.from_numpy(np.log(np.log1p(1.0 / (ranks + 1.0)) / np.log(n + 1.0))).float().to(device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def sample(self, s: int) -> torch.Tensor:
        u = torch.rand(s, generator=self.generator, device=self.order.device, dtype=torch.float64)
        rank = (torch.exp(u * math.log(self.n + 1.0)) - 1.0).long().clamp_(0, self.n - 1)
        return self.order[rank]


def sampled_softmax_loss(pos, neg, targets, negatives, log_q, s: int) -> torch.Tensor:
    """Cross-entropy over [target, negatives] with log-Q correction and accidental hits masked."""
    pos = pos - (log_q[targets] + math.log(s))
    neg = neg - (log_q[negatives] + math.log(s)).unsqueeze(0)
    neg = neg.masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=logits.device))


def train_step(model, optimizer: Optimizers, batch: tuple[torch.Tensor, ...], config: NeuralConfig,
               sampler: LogUniformSampler | None) -> torch.Tensor:
    """One optimisation step on a collated batch (sampled softmax when ``sampler`` is given); the loss."""
    tokens, segments, counts, targets = batch
    if sampler is not None:
        negatives = sampler.sample(config.negatives)
        pos, neg = model(tokens, segments, counts, targets, negatives)
        loss = sampled_softmax_loss(pos, neg, targets, negatives, sampler.log_q, config.negatives)
    else:
        loss = F.cross_entropy(model(tokens, segments, counts), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


# ---- evaluation -----------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(net: torch.nn.Module, indices: np.ndarray, pairs: Pairs, device, chunk_floats: int = 1 << 24):
    """Sums over ``pairs``: (full-softmax cross-entropy, recall@100 hits with seeds excluded, count)."""
    was_training = net.training
    net.eval()
    items = net.item_vectors()
    out = net.output_vectors(items=items)
    bias = net.output_bias()
    step = max(1, chunk_floats // max(1, net.n_tracks))
    loss_sum, hits, count = 0.0, 0.0, 0
    for lo in range(0, len(pairs), step):
        tokens, segments, counts, targets = collate(indices, pairs.take(np.arange(lo, min(len(pairs), lo + step))),
                                                    device)
        logits = net.encode(tokens, segments, counts, items=items) @ out.T
        if bias is not None:
            logits += bias
        loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
        logits[segments, tokens] = float("-inf")
        target_logit = logits.gather(1, targets.unsqueeze(1))
        hits += float(((logits > target_logit).sum(1) < VAL_TOP).sum())
        count += len(targets)
    net.train(was_training)
    return loss_sum, hits, count


# ---- the loop ---------------------------------------------------------------------------------------------
def _dist() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def param_hash(net: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_finite(record: dict, name: str, config: NeuralConfig, n_tracks: int) -> None:
    """A ModelError if a round's loss is NaN, infinite or far above chance: training diverged.

    Predicting every song as equally likely scores log(n_tracks); a loss over ten times that (the sampled
    loss ranges over ``negatives`` + 1 songs) only comes from weights that have run away.
    """
    limit = 10.0 * math.log(n_tracks + config.negatives + 1)
    losses = {k: record[k] for k in ("train_loss", "val_loss") if k in record}
    bad = {k: v for k, v in losses.items() if not math.isfinite(v) or v > limit}
    if bad:
        raise ModelError(
            f"{name} training diverged in round {record['round']} ({', '.join(f'{k}={v:.4g}' for k, v in bad.items())}"
            f", chance is about {math.log(n_tracks):.1f}) with lr={config.lr}; lower the learning rate "
            f"(e.g. --set lr={config.lr / 10:g}). No model was saved.")


def check_finite_weights(net: torch.nn.Module, name: str, config: NeuralConfig) -> None:
    """A ModelError if any weight is NaN or infinite (never return, hence never save, such a net)."""
    bad = [k for k, v in net.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelError(f"{name} training produced non-finite weights ({', '.join(bad[:3])}) with lr={config.lr}; "
                         f"lower the learning rate (e.g. --set lr={config.lr / 10:g}). No model was saved.")


def write_checkpoint(directory: str, net: torch.nn.Module, config: NeuralConfig, history: list[dict]) -> None:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / "last.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
    write_json(path / "last.json", {"config": dataclasses.asdict(config), "history": history})


def train(store: Store, config: NeuralConfig, build_net: BuildNet, name: str = "neural",
          progress: bool = False) -> tuple[torch.nn.Module, dict]:
    """Fit the net ``build_net(store, config, train_rows)`` on ``store``; returns it (best held-out round,
    on the CPU) and a fit summary. ``name`` labels progress bars, logs and errors.

    Runs data-parallel when a ``torch.distributed`` process group is initialised (see :mod:`.distributed`).
    A round whose loss is not finite stops training with a :class:`ModelError` (nothing is returned, so
    no NaN weights can be saved).
    """
    rank, world = _dist()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    indptr, indices = store.indptr, store.indices

    rows = select_playlists(store, config)
    train_rows, val_rows = split_holdout(rows, config, rng)
    val_pairs = build_pairs(store, val_rows, config, np.random.default_rng(config.seed + 1))
    if len(val_pairs):
        val_pairs = val_pairs.take(np.arange(rank, len(val_pairs), world))
    lengths = indptr[train_rows + 1] - indptr[train_rows]
    need = SEED_LENGTH if config.data == "seed" else 2
    if not np.any(lengths >= need):
        raise InputError(f"{store.path}: no training playlists with at least {need} songs (data={config.data}); "
                         "use more playlists (files=0) or data=prefix.")

    net = build_net(store, config, train_rows).to(device)
    sampled = store.n_tracks > full_softmax_limit(config, device)
    sparse = sampled and config.sparse
    net.set_sparse(sparse)  # before DDP, which reads which parameters take sparse gradients
    model = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # the buffers (song -> album / artist) never change: no need to broadcast them every forward
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                        broadcast_buffers=False)
    optimizer = make_optimizer(net, config, sparse=sparse)
    sampler = LogUniformSampler(store.track_count, device, config.seed * 1000 + rank) if sampled else None
    batch = config.batch_size
    shuffle_rng = np.random.default_rng(config.seed + 2)

    history: list[dict] = []
    best_loss, best_state, bad_rounds = math.inf, None, 0
    started = time.perf_counter()
    for round_no in range(1, config.rounds + 1):
        pairs = build_pairs(store, train_rows, config, np.random.default_rng(config.seed + 100 + round_no))
        order = shuffle_rng.permutation(len(pairs))
        steps = len(order) // (batch * world) or 1
        mine = order[rank::world]
        net.train()
        t0 = time.perf_counter()
        loss_sum, seen = 0.0, 0
        with progress_task(f"{name} round {round_no}/{config.rounds}", steps, progress and rank == 0) as advance:
            for step in range(steps):
                sel = mine[step * batch : (step + 1) * batch]
                loss = train_step(model, optimizer, collate(indices, pairs.take(sel), device), config, sampler)
                loss_sum += float(loss) * len(sel)
                seen += len(sel)
                if step % 10 == 0 or step == steps - 1:
                    elapsed = time.perf_counter() - t0
                    advance(1, loss=loss_sum / seen, rate=f"{seen * world / max(elapsed, 1e-9):,.0f}/s")
                else:
                    advance(1)
        seconds = time.perf_counter() - t0
        record = {"round": round_no, "train_loss": loss_sum / max(1, seen), "pairs": seen * world,
                  "seconds": round(seconds, 2), "pairs_per_s": round(seen * world / max(seconds, 1e-9), 1)}
        if len(val_rows):
            sums = torch.tensor(evaluate(net, indices, val_pairs, device), dtype=torch.float64)
            if world > 1:
                sums = sums.to(device)
                dist.all_reduce(sums)
            val_loss, hits, count = (float(x) for x in sums.cpu())
            record.update(val_loss=val_loss / max(count, 1), val_recall_at_100=hits / max(count, 1))
        if world > 1:
            loss_t = torch.tensor([record["train_loss"]], dtype=torch.float64, device=device)
            dist.all_reduce(loss_t)
            record["train_loss"] = float(loss_t) / world
        history.append(record)
        log.info("%s round %d: %s", name, round_no, record)
        check_finite(record, name, config, store.n_tracks)
        if rank == 0 and config.checkpoint_dir:
            write_checkpoint(config.checkpoint_dir, net, config, history)
        if "val_loss" not in record:
            continue
        if record["val_loss"] < best_loss - 1e-4:
            best_loss, bad_rounds = record["val_loss"], 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            bad_rounds += 1
            if bad_rounds >= config.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    check_finite_weights(net, name, config)
    net.set_sparse(False)
    net.eval()
    info = {
        "history": history,
        "best_round": min(history, key=lambda r: r.get("val_loss", math.inf))["round"] if history else None,
        "rounds_run": len(history),
        "train_playlists": int(len(train_rows)),
        "holdout_playlists": int(len(val_rows)),
        "softmax": "sampled" if sampled else "full",
        "updates": "sparse rows" if sparse else "dense",
        "world_size": world,
        "device": str(device),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if world > 1:
        hashes: list = [None] * world
        dist.all_gather_object(hashes, param_hash(net))
        info["rank_param_sha256"] = hashes
    return net.cpu(), info
