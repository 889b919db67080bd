"""The seed's model: mean + variance of the seed songs' embeddings -> MLPs -> a score for every song.

From the student write-up this project grew out of (Weber & Yen, "Building a Song Recommender")::

    seed songs ──embed──> (s, dim) ──mean──> "mean" MLP ──┐
                                 └──var───> "variance" MLP ─┴─ sum -> (dim,) -> head -> (n_tracks,) -> softmax

trained with cross-entropy against one target song. ``variance=False`` is the authors' one-MLP variant.
Everything here is one readable module in the nanoGPT manner: a frozen dataclass config, the network
(:class:`MeanVarNet`) with shape comments, and the :class:`MeanVar` recommender that plugs it into segue's
model interface. The data regimes and the training loop (single process and DistributedDataParallel) live in
:mod:`segue.models.meanvar_train`.

A set of seeds of any size is a CSR segment: the seed tokens of a batch are one flat id array with a row id
per token, and the segment mean / variance are ``index_add_`` reductions (the variance of one seed is 0).
Weights are saved as safetensors next to the config JSON; nothing is pickled.

Sparse updates: with the sampled softmax a step touches only the batch's seed, target and negative songs
(and their albums and artists), a few thousand of the 2.26M rows. :meth:`MeanVarNet.set_sparse` switches
every table -- song, album, artist, separate head, and the per-song bias, which lives in a one-column
``nn.Embedding`` for this reason -- to sparse gradients, and the trainer steps them with a lazy row-wise
AdamW (see :mod:`segue.models.meanvar_train`). DistributedDataParallel recognises ``nn.Embedding(sparse=True)``
parameters and all-reduces their sparse gradients. The bias is still saved as the 1-D ``out_bias`` tensor
(state-dict hooks translate), so checkpoints keep their format.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from segue.data.store import Store
from segue.errors import InputError, ModelError
from segue.models.base import ModelConfig, Recommender, register

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
DATA_REGIMES = ("prefix", "seed")
ITEM_FEATURES = ("track", "track+album+artist")
INITS = ("normal", "als")
TARGETS = ("later", "next")
DEVICES = ("auto", "cpu", "cuda")
FULL_SOFTMAX_AUTO = {"cpu": 50_000, "cuda": 4_000_000}  # songs; measured in benchmarks/meanvar_gpu.py


@dataclasses.dataclass(frozen=True)
class MeanVarConfig(ModelConfig):
    # --- architecture ---
    dim: int = 50                    # embedding width; the head's input stays this wide, as the authors fixed it
    hidden: int = 100                # width of the hidden layer of the mean and variance MLPs
    variance: bool = True            # False: the authors' one-MLP (mean only) variant
    residual: bool = True            # h = mean + MLPs(...): starts as "songs near the seeds' centroid"
    tied: bool = True                # head scores songs with the input song vectors (else a separate table)
    song_bias: bool = True           # per-song bias in the head (learns popularity)
    item_features: str = "track+album+artist"  # "track": one free vector per song
    dropout: float = 0.1             # on the MLPs' hidden layers and their output
    init: str = "normal"             # "als": warm-start song vectors from implicit ALS item factors
    # --- data (see meanvar_train) ---
    data: str = "prefix"             # "seed": the write-up's 20 seeds -> songs 21..30; "prefix": every prefix
    files: int = 0                   # use the first files*1000 playlists of the store (0 = all)
    training_sets: int = 10          # data=seed: how many of the ten targets (songs 21..30)
    max_seeds: int = 50              # data=prefix: prefixes of 1..max_seeds songs
    pairs_per_playlist: int = 5      # data=prefix: (prefix, target) pairs drawn per playlist per round
    target: str = "later"            # data=prefix: "later" = any song after the prefix, "next" = the next one
    # --- optimisation ---
    lr: float = 3e-3
    weight_decay: float = 0.0        # AdamW's decoupled decay (embeddings excluded, see optimizer groups)
    embedding_decay: float = 0.0     # decoupled decay on the song/album/artist tables (sparse: touched rows only)
    sparse: bool = True              # sampled softmax: sparse gradients + lazy row-wise AdamW for the tables
                                     # (only the rows a batch touches are updated); False: dense AdamW
    batch_size: int = 512
    rounds: int = 5                  # epochs (upper bound; early stopping may end sooner)
    patience: int = 2                # rounds without a better held-out loss before stopping
    holdout: float = 0.02            # share of training playlists held out for per-round evaluation
    max_holdout: int = 2000
    full_softmax_max: int = -1       # catalogues above this train with sampled softmax (log-Q corrected);
                                     # -1 = by device (FULL_SOFTMAX_AUTO): 2 CPU cores take ~0.7 s/step for
                                     # a full softmax over 103k songs (sampled ~0.1 s); an H200 takes 37 ms
                                     # over the full MPD's 2.26M songs (15 GB), so the seed's objective fits
    negatives: int = 4096            # sampled softmax: shared log-uniform negatives per batch
    device: str = "auto"             # auto | cpu | cuda
    seed: int = 0
    threads: int = 0                 # torch intra-op threads (0 = torch's default)
    checkpoint_dir: str = ""         # if set, the latest round is written there (safetensors + JSON)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name, value, allowed in (
            ("data", self.data, DATA_REGIMES), ("item_features", self.item_features, ITEM_FEATURES),
            ("init", self.init, INITS), ("target", self.target, TARGETS), ("device", self.device, DEVICES),
        ):
            if value not in allowed:
                raise InputError(f"setting {name}={value!r}: expected one of {', '.join(allowed)}.")
        for name in ("dim", "hidden", "batch_size", "rounds", "max_seeds", "pairs_per_playlist", "negatives"):
            if getattr(self, name) <= 0:
                raise InputError(f"setting {name}={getattr(self, name)!r}: expected a positive integer.")
        if self.full_softmax_max < -1:
            raise InputError(f"setting full_softmax_max={self.full_softmax_max}: expected -1 (by device) or >= 0.")
        if not 1 <= self.training_sets <= 10:
            raise InputError(f"setting training_sets={self.training_sets}: expected 1..10 (songs 21..30).")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.holdout < 0.5:
            raise InputError("settings dropout and holdout must lie in [0, 1) and [0, 0.5).")


def full_softmax_limit(config: "MeanVarConfig", device: torch.device) -> int:
    """The largest catalogue trained with the full softmax: the setting, or by device when it is -1."""
    return config.full_softmax_max if config.full_softmax_max >= 0 else FULL_SOFTMAX_AUTO[device.type]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("setting device=cuda but no CUDA device is available; use device=cpu or auto.")
    return torch.device(name)


def _mlp(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class MeanVarNet(nn.Module):
    """Song vectors, the mean/variance MLPs and the scoring head."""

    def __init__(self, config: MeanVarConfig, n_tracks: int, track_album: np.ndarray | None = None,
                 track_artist: np.ndarray | None = None, n_albums: int = 0, n_artists: int = 0) -> None:
        super().__init__()
        self.config = config
        self.n_tracks = n_tracks
        dim = config.dim
        self.features = config.item_features == "track+album+artist"
        parts = 3 if self.features else 1
        std = 1.0 / math.sqrt(dim * parts)
        self.track_emb = nn.Embedding(n_tracks, dim)
        nn.init.normal_(self.track_emb.weight, std=std)
        if self.features:
            # unknown album/artist (-1) maps to a padding row that stays zero
            album = np.where(np.asarray(track_album) < 0, n_albums, track_album).astype(np.int64)
            artist = np.where(np.asarray(track_artist) < 0, n_artists, track_artist).astype(np.int64)
            self.register_buffer("track_album", torch.from_numpy(album))
            self.register_buffer("track_artist", torch.from_numpy(artist))
            self.album_emb = nn.Embedding(n_albums + 1, dim, padding_idx=n_albums)
            self.artist_emb = nn.Embedding(n_artists + 1, dim, padding_idx=n_artists)
            for table in (self.album_emb, self.artist_emb):
                nn.init.normal_(table.weight, std=std)
                with torch.no_grad():
                    table.weight[-1].zero_()
        self.mean_mlp = _mlp(dim, config.hidden, config.dropout)
        self.var_mlp = _mlp(dim, config.hidden, config.dropout) if config.variance else None
        if not config.tied:
            self.out_emb = nn.Embedding(n_tracks, dim)
            nn.init.normal_(self.out_emb.weight, std=1.0 / math.sqrt(dim))
        # a one-column table so that it can take sparse gradients; saved as the 1-D tensor "out_bias"
        self.out_bias = nn.Embedding(n_tracks, 1, _weight=torch.zeros(n_tracks, 1)) if config.song_bias else None
        self.register_state_dict_post_hook(_bias_to_vector)
        self.register_load_state_dict_pre_hook(_bias_from_vector)
        self.sparse = False
        if config.residual:
            # the MLPs start near zero so the model starts as "score = song . centroid(seeds)"
            for mlp in (self.mean_mlp, self.var_mlp):
                if mlp is not None:
                    nn.init.normal_(mlp[3].weight, std=0.02)
                    nn.init.zeros_(mlp[3].bias)

    def set_sparse(self, sparse: bool) -> "MeanVarNet":
        """Sparse (True) or dense gradients for every table. Sparse needs every table lookup to go through
        ids (the sampled-softmax forward); the full-softmax forward uses whole tables and must stay dense."""
        self.sparse = bool(sparse)
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                module.sparse = self.sparse
        return self

    # ---- song vectors ----------------------------------------------------------------------------
    def item_vectors(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Input vectors of songs ``ids`` (all songs when None): (len(ids) | n_tracks, dim)."""
        if ids is None:
            vec = self.track_emb.weight
            if self.features:
                vec = vec + self.album_emb(self.track_album) + self.artist_emb(self.track_artist)
            return vec
        vec = self.track_emb(ids)
        if self.features:
            vec = vec + self.album_emb(self.track_album[ids]) + self.artist_emb(self.track_artist[ids])
        return vec

    def output_vectors(self, ids: torch.Tensor | None = None, items: torch.Tensor | None = None) -> torch.Tensor:
        """Head vectors of songs ``ids`` (all when None); ``items`` reuses already computed input vectors."""
        if not self.config.tied:
            return self.out_emb.weight if ids is None else self.out_emb(ids)
        return items if items is not None else self.item_vectors(ids)

    def output_bias(self, ids: torch.Tensor | None = None) -> torch.Tensor | None:
        if self.out_bias is None:
            return None
        return self.out_bias.weight[:, 0] if ids is None else self.out_bias(ids)[:, 0]

    # ---- the model ---------------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, segments: torch.Tensor, counts: torch.Tensor,
               items: torch.Tensor | None = None) -> torch.Tensor:
        """Playlist vectors from CSR seeds: tokens (T,) song ids, segments (T,) row of each token,
        counts (b,) seeds per row (>= 1). ``items`` (n_tracks, dim) reuses precomputed song vectors."""
        x = items[tokens] if items is not None else self.item_vectors(tokens)        # (T, dim)
        b, dim = counts.shape[0], x.shape[1]
        denom = counts.to(x.dtype).clamp_min(1).unsqueeze(1)                          # (b, 1)
        mean = x.new_zeros(b, dim).index_add_(0, segments, x) / denom                 # (b, dim)
        h = self.mean_mlp(mean)
        if self.var_mlp is not None:
            dev = (x - mean[segments]) ** 2                                           # (T, dim)
            var = x.new_zeros(b, dim).index_add_(0, segments, dev) / denom            # (b, dim)
            h = h + self.var_mlp(var)
        if self.config.residual:
            h = h + mean
        return h                                                                      # (b, dim)

    def forward(self, tokens, segments, counts, targets: torch.Tensor | None = None,
                negatives: torch.Tensor | None = None):
        """Logits over every song (b, n_tracks); with ``targets`` (b,) and ``negatives`` (s,) the sampled
        softmax pieces instead: target logits (b,) and negative logits (b, s)."""
        if negatives is None:
            items = self.item_vectors()                                               # (n, dim)
            h = self.encode(tokens, segments, counts, items=items)                    # (b, dim)
            logits = h @ self.output_vectors(items=items).T                           # (b, n)
            return logits + self.output_bias() if self.out_bias is not None else logits
        h = self.encode(tokens, segments, counts)                                     # (b, dim)
        pos = (h * self.output_vectors(targets)).sum(1)                               # (b,)
        neg = h @ self.output_vectors(negatives).T                                    # (b, s)
        if self.out_bias is not None:
            pos = pos + self.output_bias(targets)
            neg = neg + self.output_bias(negatives)
        return pos, neg


def _bias_to_vector(module, state_dict, prefix, local_metadata) -> None:
    """state_dict hook: the bias table (n, 1) is saved as the 1-D ``out_bias`` (the checkpoint format)."""
    key = prefix + "out_bias.weight"
    if key in state_dict:
        state_dict[prefix + "out_bias"] = state_dict.pop(key)[:, 0]


def _bias_from_vector(module, state_dict, prefix, *args) -> None:
    """load_state_dict pre-hook: a 1-D ``out_bias`` goes back into the (n, 1) bias table."""
    key = prefix + "out_bias"
    if key in state_dict and state_dict[key].ndim == 1:
        state_dict[key + ".weight"] = state_dict.pop(key).unsqueeze(1)


def seed_tensors(indptr: np.ndarray, indices: np.ndarray, device=None):
    """CSR seeds -> (tokens, segments, counts) tensors for :meth:`MeanVarNet.encode`."""
    counts = np.diff(indptr).astype(np.int64)
    segments = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return as_t(indices.astype(np.int64)), as_t(segments), as_t(counts)


@register
class MeanVar(Recommender):
    """Mean + variance of seed-song embeddings -> MLPs -> softmax over songs (the seed write-up's model)."""

    name = "meanvar"
    Config = MeanVarConfig
    array_files = (WEIGHTS_FILE,)

    def __init__(self, config: MeanVarConfig | None = None) -> None:
        super().__init__(config)
        self.net: MeanVarNet | None = None
        self._items: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None

    # ---- training ----------------------------------------------------------------------------------
    def _fit(self, store: Store, progress: bool) -> None:
        from segue.models.meanvar_train import train

        self.config.validate()
        self.net, self.fit_info = train(store, self.config, progress=progress)
        self._cache()

    @classmethod
    def train_distributed(cls, store_path, out_dir, config: MeanVarConfig | None = None, nproc: int = 2,
                          progress: bool = False, timeout: float | None = None) -> "MeanVar":
        """Train with ``nproc`` DistributedDataParallel processes under torchrun; rank 0 writes ``out_dir``.

        gloo on CPU, NCCL on GPUs (``device`` config). Returns the trained model loaded from ``out_dir``.
        """
        config = config or cls.Config()
        config.validate()
        store_path = store_path.path if isinstance(store_path, Store) else Path(store_path)
        if nproc < 1:
            raise InputError(f"nproc={nproc}: expected at least 1 process.")
        if resolve_device(config.device).type == "cuda" and nproc > torch.cuda.device_count():
            raise InputError(
                f"nproc={nproc} but {torch.cuda.device_count()} CUDA device(s): NCCL needs a GPU per process. "
                "Use --nproc up to the number of GPUs, or --device cpu for CPU processes (gloo)."
            )
        from segue.io import write_json

        with tempfile.TemporaryDirectory(prefix="segue-ddp-") as tmp:
            config_path = Path(tmp) / "config.json"
            write_json(config_path, dataclasses.asdict(config))
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   "-m", "segue.models.meanvar_train", "--store", str(store_path), "--out", str(out_dir),
                   "--config", str(config_path)] + (["--progress"] if progress else [])
            env = dict(os.environ)
            env.setdefault("OMP_NUM_THREADS", str(max(1, config.threads or 1)))
            result = subprocess.run(cmd, env=env, timeout=timeout, capture_output=not progress, text=True)
        if result.returncode != 0:
            tail = (result.stderr or "")[-3000:] if not progress else ""
            raise ModelError(f"distributed training failed (exit {result.returncode}).\n{tail}")
        return cls.load(out_dir)

    # ---- inference ---------------------------------------------------------------------------------
    def _cache(self) -> None:
        self.net.eval()
        with torch.no_grad():
            self._items = self.net.item_vectors().detach().float().cpu()
            self._out = self.net.output_vectors(items=self._items).detach().float().cpu()
            bias = self.net.output_bias()
            self._bias = bias.detach().float().cpu() if bias is not None else None
        self.net.cpu()

    def _score(self, indptr, indices, titles) -> np.ndarray:
        tokens, segments, counts = seed_tensors(indptr, indices)
        with torch.no_grad():
            h = self.net.encode(tokens, segments, counts, items=self._items)          # (b, dim)
            logits = h @ self._out.T                                                  # (b, n)
            if self._bias is not None:
                logits += self._bias
        return logits.numpy()

    def confidence(self, seeds: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Softmax probability of songs ``ids`` for one playlist's ``seeds``, seeds excluded from the softmax."""
        seeds = np.asarray(seeds, dtype=np.int32)
        if len(seeds) == 0:
            scores = self.fallback._score(np.zeros(2, np.int64), np.zeros(0, np.int32), [None])[0]
        else:
            scores = self._score(np.array([0, len(seeds)], np.int64), seeds, None)[0]
        scores = scores.astype(np.float64)
        scores[seeds] = -np.inf
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        ids = np.asarray(ids)
        return np.where(ids >= 0, probs[np.clip(ids, 0, None)], 0.0).astype(np.float32)

    # ---- persistence -------------------------------------------------------------------------------
    def _save_arrays(self, directory: Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "segue-meanvar", "version": "1"})

    def _load_arrays(self, directory: Path) -> None:
        state = load_file(str(directory / WEIGHTS_FILE))
        self.net = net_from_state(self.config, state)
        self._cache()


def net_from_state(config: MeanVarConfig, state: dict[str, torch.Tensor]) -> MeanVarNet:
    """Rebuild a :class:`MeanVarNet` from a safetensors state dict (shapes give the table sizes)."""
    n_tracks = state["track_emb.weight"].shape[0]
    kwargs = {}
    if config.item_features == "track+album+artist":
        kwargs = dict(track_album=state["track_album"].numpy(), track_artist=state["track_artist"].numpy(),
                      n_albums=state["album_emb.weight"].shape[0] - 1, n_artists=state["artist_emb.weight"].shape[0] - 1)
    net = MeanVarNet(config, n_tracks, **kwargs)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights do not match the config (missing {missing}, unexpected {unexpected})")
    return net
