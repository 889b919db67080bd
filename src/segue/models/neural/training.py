"""Training machinery shared by segue's neural models: the loop, early stopping on held-out R-precision,
the ALS warm start, sampled softmax, sparse row updates and data-parallel training (the torchrun launcher is
:mod:`.distributed`; the training examples are :mod:`.examples`).

A network (a :class:`~segue.models.neural.layers.PlaylistNet`) says which examples it learns from and how
they are batched; everything else is here. Each round: fresh examples (:mod:`.examples`; random prefix
lengths, a ``shuffle`` share of unordered playlists), shuffled mini-batches, AdamW (row-wise sparse for the
tables under the sampled softmax, below), gradients zeroed each step. After each round the held-out share
of the training playlists is scored as challenge-like queries (1-100 seeds, the rest to find) over the
full catalogue and its R-precision decides early stopping (``patience`` rounds without a better one; the
best round's weights are restored): loss alone said little on sparse data, where the held-out loss keeps
falling after the ranking has stopped improving. A round whose loss is not finite or far above chance
stops training with a :class:`~segue.errors.ModelError` that names the learning rate.

Full softmax while the catalogue has at most ``full_softmax_max`` songs (by default 50,000 on CPU,
4,000,000 on CUDA: on an H200 the full MPD's 2.26M-song softmax costs 37 ms a step); above that a sampled
softmax: ``negatives`` shared negatives per batch drawn log-uniformly over the popularity rank, every logit
corrected by -log(expected count) (log-Q) and accidental hits masked, which keeps a step's memory
independent of the catalogue. ``hard_negatives`` (off by default) adds, per example (pair or window), the
songs scoring highest for it (the mean of its rows' vectors against every song, in blocks) that are not in
its playlist, as in APC-RTA's hard negatives; they enter the softmax exactly, without a log-Q term, and a
sampled negative that is also one of them is masked so that no song counts twice. No gain beyond noise on
the generator for either model (README); the mining scores every song for every example, which on a CPU
costs meanvar (512 pairs a batch) 5-9x its step time.

Sparse updates (``sparse``, on by default; used with the sampled softmax only): a step touches the batch's
seed, target and negative songs -- about 17k of 2.26M song rows at batch 512 -- and their albums and
artists. The tables (and the per-song bias) then take sparse gradients and :class:`RowAdamW` updates only
the touched rows: their two moments and their weights, with bias correction by the global step (lazy Adam,
as TensorFlow's LazyAdam and torch's SparseAdam). Rows a batch does not touch keep their moments
unchanged instead of decaying them, which is the usual lazy-Adam approximation. ``embedding_decay`` is
decoupled decay applied to the touched rows only (a row is decayed when it is used, not every step); the
bias is never decayed. Dense layers keep dense AdamW. The full softmax (small catalogues) touches every row
anyway and stays dense AdamW throughout. Under DDP the sparse gradients stay out of DDP's reducer and are
averaged by :mod:`.sparse_grads` (dense all-gathers of each rank's touched rows: gloo and NCCL alike; tested
with gloo on CPU, NCCL untested here).

Memory on the full MPD (2,262,292 songs, dim 50, float32): song table 2.26M x 50 x 4 B = 452 MB; with
album (734,684) and artist (295,860) tables 658 MB of parameters with the song bias. Dense AdamW keeps
two moments and a dense gradient: x4 = 2.6 GB, and reads and writes all of it every step. Sparse:
parameters + moments (x3 = 2.0 GB) and gradients of the touched rows only. Full softmax would need batch x
2.26M logits and their gradient (512 x 2.26M x 4 B x 2 = 9.3 GB) per step; the sampled softmax needs
512 x 4096 x 4 B x 2 = 17 MB. So the full MPD trains in about 3 GB.

Distributed: each rank takes its share of every round's shuffled examples (equal step counts),
DistributedDataParallel averages the dense gradients (gloo on CPU, NCCL on GPUs) and :mod:`.sparse_grads` the
sparse ones, the held-out sums are all-reduced, rank 0 writes the model directory.
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
from segue.models.neural.examples import SEED_LENGTH, Queries, csr_rows, holdout_queries, round_sequences
from segue.models.neural.layers import ItemEmbeddings, PlaylistNet, title_tokens
from segue.models.neural.sparse_grads import SparseGradientSync
from segue.progress import progress_task

log = logging.getLogger(__name__)

BuildNet = Callable[[Store, NeuralConfig, np.ndarray], PlaylistNet]  # (store, config, train rows) -> net
ALS_ITERATIONS = 15
ALS_REGULARIZATION = 0.05
ALS_ALPHA = 2.0          # confidence = alpha x BM25 weight, as segue's als model
BM25_K1, BM25_B = 100.0, 0.8


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


def store_titles(store: Store, config: NeuralConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hashed title features of every store playlist (CSR); empty rows when the model takes no title."""
    if not config.title:
        return np.zeros(store.n_playlists + 1, np.int64), np.zeros(0, np.int64)
    return title_tokens(store.names, store.n_playlists, config.title_buckets)


# ---- initialisation -------------------------------------------------------------------------------
def als_item_factors(store: Store, rows: np.ndarray, config: NeuralConfig) -> np.ndarray:
    """Item factors (n_tracks, dim) of implicit's ALS on the training playlists, BM25-weighted as segue's
    ``als`` model (fitted at the model width, so no projection is needed)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import bm25_weight
    from threadpoolctl import threadpool_limits

    matrix = store.csr(binary=True)[rows].tocsr()
    confidence = (ALS_ALPHA * bm25_weight(matrix.astype(np.float32), K1=BM25_K1, B=BM25_B)).tocsr()
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=config.dim, regularization=ALS_REGULARIZATION,
                                      iterations=ALS_ITERATIONS, alpha=1.0, random_state=config.seed,
                                      num_threads=max(0, config.threads), calculate_training_loss=False)
        als.fit(confidence.astype(np.float32), show_progress=False)
    return np.asarray(als.item_factors, dtype=np.float32)[:, : config.dim]


def warm_start_from_als(items: ItemEmbeddings, store: Store, rows: np.ndarray, config: NeuralConfig) -> None:
    """Start the song vectors from ALS fitted on ``rows`` (see :meth:`ItemEmbeddings.warm_start`)."""
    items.warm_start(als_item_factors(store, rows, config))


# ---- optimisation ----------------------------------------------------------------------------------
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
    """Dense: AdamW over everything but the title table. Sparse (the net in sparse mode): :class:`RowAdamW`
    for the song tables and the song bias too. The title table always takes sparse gradients and RowAdamW.
    Tables decay by ``embedding_decay``, weight matrices by ``weight_decay``, biases not at all."""
    always_rows, tables, bias, weights, flat = [], [], [], [], []
    for name, param in net.named_parameters():
        if name.endswith("title_emb.weight"):
            always_rows.append(param)
        elif name.endswith("_emb.weight") and not name.endswith("bias_emb.weight"):
            tables.append(param)
        elif name.endswith("bias_emb.weight"):
            bias.append(param)
        elif param.ndim >= 2:
            weights.append(param)
        else:
            flat.append(param)
    dense = [{"params": weights, "weight_decay": config.weight_decay},
             {"params": flat, "weight_decay": 0.0}]
    table_lr = config.lr * config.table_lr
    rows = [{"params": tables, "weight_decay": config.embedding_decay, "lr": table_lr},
            {"params": bias, "weight_decay": 0.0, "lr": table_lr}]
    title = [{"params": always_rows, "weight_decay": config.embedding_decay}]
    if not sparse:
        dense, rows = rows + dense, title
    else:
        rows = rows + title
    rows = [g for g in rows if g["params"]]
    dense = [g for g in dense if g["params"]]
    return Optimizers(RowAdamW(rows, lr=config.lr) if rows else None,
                      torch.optim.AdamW(dense, lr=config.lr) if dense else None)


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


def sampled_softmax_loss(pos, neg, targets, negatives, log_q, s: int, hard=None) -> torch.Tensor:
    """Cross-entropy over [target, negatives, hard negatives] with log-Q correction and accidental hits
    masked. Hard negatives (chosen, not sampled) enter the partition sum exactly, so they take no log-Q term;
    the sampled ones estimate the rest of it (the forward masked those that are also hard negatives)."""
    pos = pos - (log_q[targets] + math.log(s))
    neg = neg - (log_q[negatives] + math.log(s)).unsqueeze(0)
    neg = neg.masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    logits = torch.cat([pos.unsqueeze(1), neg] + ([] if hard is None else [hard]), dim=1)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=logits.device))


def train_step(model, optimizer: Optimizers, batch: dict, config: NeuralConfig,
               sampler: LogUniformSampler | None, sparse_sync: SparseGradientSync | None = None) -> torch.Tensor:
    """One optimisation step on a collated batch (sampled softmax when ``sampler`` is given); the loss.
    Under DDP, ``sparse_sync`` averages the tables' sparse gradients (DDP averages the rest in backward)."""
    if sampler is not None:
        negatives = sampler.sample(config.negatives)
        (pos, neg, hard), targets = model(batch, negatives, config.hard_negatives)
        loss = sampled_softmax_loss(pos, neg, targets, negatives, sampler.log_q, config.negatives, hard)
    else:
        logits, targets = model(batch)
        loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sparse_sync is not None:
        sparse_sync.average()
    optimizer.step()
    return loss.detach()


# ---- evaluation -----------------------------------------------------------------------------------------
@torch.no_grad()
def r_precision_sums(net: PlaylistNet, queries: Queries, titles: tuple[np.ndarray, np.ndarray],
                     chunk_floats: int = 1 << 24) -> tuple[float, int]:
    """(sum of R-precision, count) over ``queries``: every song ranked (seeds excluded), the top |truth|
    compared with the truth. The challenge's headline metric, on the full catalogue (never sampled)."""
    was_training = net.training
    net.eval()
    items = net.items.vectors()
    out = net.output_vectors(items=items)
    bias = net.output_bias()
    n = out.shape[0]
    step = max(1, chunk_floats // max(1, n))
    total, count = 0.0, 0
    for lo in range(0, len(queries), step):
        q = queries.take(np.arange(lo, min(len(queries), lo + step)))
        t_off, t_ids = csr_rows(titles[0], titles[1], q.rows)
        scores = net.playlist_vectors(q.seed_indptr, q.seed_indices, t_off, t_ids, items=items) @ out.T
        if bias is not None:
            scores += bias
        device = scores.device
        b = len(q)
        seed_rows = torch.from_numpy(np.repeat(np.arange(b), np.diff(q.seed_indptr))).to(device)
        scores[seed_rows, torch.from_numpy(q.seed_indices.astype(np.int64)).to(device)] = float("-inf")
        size = np.diff(q.truth_indptr)
        truth = torch.zeros(b, n, dtype=torch.bool, device=device)
        truth[torch.from_numpy(np.repeat(np.arange(b), size)).to(device),
              torch.from_numpy(q.truth_indices.astype(np.int64)).to(device)] = True
        r = torch.from_numpy(size).to(device)
        width = int(min(n, max(1, size.max())))
        top = scores.topk(width, dim=1).indices
        hits = truth.gather(1, top) & (torch.arange(width, device=device)[None, :] < r[:, None])
        ok = r > 0
        total += float((hits.sum(1)[ok] / r[ok]).sum())
        count += int(ok.sum())
    net.train(was_training)
    return total, count


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
    loss = record["train_loss"]
    if not math.isfinite(loss) or loss > 10.0 * math.log(n_tracks + config.negatives + 1):
        raise ModelError(
            f"{name} training diverged in round {record['round']} (train loss {loss:.4g}, chance is about "
            f"{math.log(n_tracks):.1f}) with lr={config.lr}; lower the learning rate "
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


def round_examples(net: PlaylistNet, store: Store, rows: np.ndarray, config: NeuralConfig, minimum: int,
                   rng: np.random.Generator):
    """This round's sequences and examples; on a small store more draws until there are ``minimum``."""
    shuffle = 0.0 if config.data == "seed" else config.shuffle
    seqs = round_sequences(store.indptr, store.indices, rows, shuffle, rng)
    parts = [net.round_examples(seqs, config, rng)]
    total = len(parts[0])
    while 0 < total < minimum:
        parts.append(net.round_examples(seqs, config, rng))
        total += len(parts[-1])
    return seqs, type(parts[0]).concat(parts) if len(parts) > 1 else parts[0]


def train(store: Store, config: NeuralConfig, build_net: BuildNet, name: str = "neural",
          progress: bool = False) -> tuple[PlaylistNet, dict]:
    """Fit the net ``build_net(store, config, train_rows)`` on ``store``; returns it (best held-out round,
    on the CPU) and a fit summary. ``name`` labels progress bars, logs and errors.

    Runs data-parallel when a ``torch.distributed`` process group is initialised (see :mod:`.distributed`).
    """
    rank, world = _dist()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())

    rows = select_playlists(store, config)
    train_rows, val_rows = split_holdout(rows, config, rng)
    lengths = store.indptr[train_rows + 1] - store.indptr[train_rows]
    need = SEED_LENGTH if config.data == "seed" else 2
    if not np.any(lengths >= need):
        raise InputError(f"{store.path}: no training playlists with at least {need} songs (data={config.data}); "
                         "use more playlists (files=0) or data=prefix.")
    titles = store_titles(store, config)
    queries = holdout_queries(store.indptr, store.indices, val_rows, np.random.default_rng(config.seed + 1))
    queries = queries.take(np.arange(rank, len(queries), world))

    net = build_net(store, config, train_rows).to(device)
    sampled = store.n_tracks > full_softmax_limit(config, device)
    sparse = sampled and config.sparse
    net.set_sparse(sparse)  # before DDP, which reads which parameters take sparse gradients
    model, sparse_sync = net, None
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        sparse_sync = SparseGradientSync(net)  # before DDP: it keeps the sparse tables out of DDP's reducer
        # the buffers (song -> album / artist) never change: no need to broadcast them every forward
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                        broadcast_buffers=False)
    optimizer = make_optimizer(net, config, sparse=sparse)
    sampler = LogUniformSampler(store.track_count, device, config.seed * 1000 + rank) if sampled else None
    batch = config.batch_size
    minimum = 0 if config.data == "seed" else config.min_steps * batch * world
    shuffle_rng = np.random.default_rng(config.seed + 2)

    history: list[dict] = []
    best_score, best_state, bad_rounds = -math.inf, None, 0
    started = time.perf_counter()
    for round_no in range(1, config.rounds + 1):
        round_rng = np.random.default_rng(config.seed + 100 + round_no)
        seqs, examples = round_examples(net, store, train_rows, config, minimum, round_rng)
        order = shuffle_rng.permutation(len(examples))
        steps = len(order) // (batch * world) or 1
        mine = order[rank::world]
        net.train()
        t0 = time.perf_counter()
        loss_sum, seen, predicted = 0.0, 0, 0
        with progress_task(f"{name} round {round_no}/{config.rounds}", steps, progress and rank == 0) as advance:
            for step in range(steps):
                sel = mine[step * batch : (step + 1) * batch]
                data = net.collate(seqs, examples.take(sel), titles, device, round_rng)
                loss = train_step(model, optimizer, data, config, sampler, sparse_sync)
                loss_sum += float(loss) * len(sel)
                seen += len(sel)
                predicted += int((data["targets"] >= 0).sum())
                if step % 10 == 0 or step == steps - 1:
                    elapsed = time.perf_counter() - t0
                    advance(1, loss=loss_sum / seen, rate=f"{seen * world / max(elapsed, 1e-9):,.0f}/s")
                else:
                    advance(1)
        seconds = time.perf_counter() - t0
        # a prediction is one (playlist so far, song to rank first) example: a pair, or a window position
        record = {"round": round_no, "train_loss": loss_sum / max(1, seen), "examples": seen * world,
                  "predictions": predicted * world, "steps": steps, "seconds": round(seconds, 2),
                  "predictions_per_s": round(predicted * world / max(seconds, 1e-9), 1)}
        if world > 1:
            loss_t = torch.tensor([record["train_loss"]], dtype=torch.float64, device=device)
            dist.all_reduce(loss_t)
            record["train_loss"] = float(loss_t) / world
        check_finite(record, name, config, store.n_tracks)
        if len(val_rows):
            sums = torch.tensor(r_precision_sums(net, queries, titles), dtype=torch.float64)
            if world > 1:
                sums = sums.to(device)
                dist.all_reduce(sums)
            total, count = (float(x) for x in sums.cpu())
            record["val_r_precision"] = total / max(count, 1)
        history.append(record)
        log.info("%s round %d: %s", name, round_no, record)
        if rank == 0 and config.checkpoint_dir:
            write_checkpoint(config.checkpoint_dir, net, config, history)
        if "val_r_precision" not in record:
            continue
        if record["val_r_precision"] > best_score + 1e-4:
            best_score, bad_rounds = record["val_r_precision"], 0
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
        "best_round": max(history, key=lambda r: r.get("val_r_precision", -math.inf))["round"] if history else None,
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
