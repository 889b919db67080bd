"""The seed's network: mean + variance of the seed songs' embeddings -> MLPs -> a score for every song.

From the student write-up this project grew out of (Weber & Yen, "Building a Song Recommender")::

    seed songs ──embed──> (s, dim) ──mean──> "mean" MLP ──┐
                                 └──var───> "variance" MLP ─┴─ sum -> (dim,) -> head -> (n_tracks,) -> softmax

trained with cross-entropy against one target song. ``variance=False`` is the authors' one-MLP variant.
This module is the network only (:class:`MeanVarConfig`, :class:`MeanVarNet`, with shape comments); the
training machinery is :mod:`segue.models.neural.training` and the recommender is
:mod:`segue.models.neural.meanvar`.

A set of seeds of any size is a CSR segment: the seed tokens of a batch are one flat id array with a row id
per token, and the segment mean / variance are ``index_add_`` reductions (the variance of one seed is 0).

Sparse updates: with the sampled softmax a step touches only the batch's seed, target and negative songs
(and their albums and artists), a few thousand of the 2.26M rows. :meth:`MeanVarNet.set_sparse` switches
every table -- song, album, artist, separate head, and the per-song bias, which lives in a one-column
``nn.Embedding`` for this reason -- to sparse gradients, and the trainer steps them with a lazy row-wise
AdamW. DistributedDataParallel recognises ``nn.Embedding(sparse=True)`` parameters and all-reduces their
sparse gradients. The bias is still saved as the 1-D ``out_bias`` tensor (state-dict hooks translate), so
checkpoints keep their format.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn as nn

from segue.errors import InputError
from segue.models.neural.config import NeuralConfig


@dataclasses.dataclass(frozen=True)
class MeanVarConfig(NeuralConfig):
    """The shared neural settings (:class:`NeuralConfig`) plus meanvar's architecture."""

    hidden: int = 100                # width of the hidden layer of the mean and variance MLPs
    variance: bool = True            # False: the authors' one-MLP (mean only) variant
    residual: bool = True            # h = mean + MLPs(...): starts as "songs near the seeds' centroid"
    tied: bool = True                # head scores songs with the input song vectors (else a separate table)
    song_bias: bool = True           # per-song bias in the head (learns popularity)

    def validate(self) -> None:
        super().validate()
        if self.hidden <= 0:
            raise InputError(f"setting hidden={self.hidden!r}: expected a positive integer.")


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

