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
Song vectors are the shared track + album + artist embeddings (:class:`~segue.models.neural.layers.ItemEmbeddings`);
with ``title`` the title's vector (:class:`~segue.models.neural.layers.TitleEncoder`) is added to the seeds'
mean, like one more seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn

from segue.config import setting
from segue.models.neural.config import NeuralConfig
from segue.models.neural.examples import collate_pairs, meanvar_examples
from segue.models.neural.layers import PlaylistNet


@dataclasses.dataclass(frozen=True)
class MeanVarConfig(NeuralConfig):
    """The shared neural settings (:class:`NeuralConfig`) plus meanvar's architecture."""

    hidden: int = setting(100, gt=0)  # width of the hidden layer of the mean and variance MLPs
    variance: bool = True            # False: the authors' one-MLP (mean only) variant
    residual: bool = True            # h = mean + MLPs(...): starts as "songs near the seeds' centroid"
    tied: bool = True                # head scores songs with the input song vectors (else a separate table)
    song_bias: bool = True           # per-song bias in the head (learns popularity)


def _mlp(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class MeanVarNet(PlaylistNet):
    """Song vectors, the mean/variance MLPs and the scoring head."""

    def __init__(self, config: MeanVarConfig, n_tracks: int, track_album: np.ndarray | None = None,
                 track_artist: np.ndarray | None = None, n_albums: int = 0, n_artists: int = 0) -> None:
        super().__init__(config, n_tracks, track_album, track_artist, n_albums, n_artists, bias=config.song_bias)
        dim = config.dim
        self.mean_mlp = _mlp(dim, config.hidden, config.dropout)
        self.var_mlp = _mlp(dim, config.hidden, config.dropout) if config.variance else None
        if not config.tied:
            self.out_emb = nn.Embedding(n_tracks, dim)
            nn.init.normal_(self.out_emb.weight, std=dim ** -0.5)
        if config.residual:
            # the MLPs start near zero so the model starts as "score = song . centroid(seeds)"
            for mlp in (self.mean_mlp, self.var_mlp):
                if mlp is not None:
                    nn.init.normal_(mlp[3].weight, std=0.02)
                    nn.init.zeros_(mlp[3].bias)

    def output_vectors(self, ids: torch.Tensor | None = None, items: torch.Tensor | None = None) -> torch.Tensor:
        if not self.config.tied:
            return self.out_emb.weight if ids is None else self.out_emb(ids)
        return super().output_vectors(ids, items)

    # ---- the model ---------------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, segments: torch.Tensor, counts: torch.Tensor,
               items: torch.Tensor | None = None, title: torch.Tensor | None = None) -> torch.Tensor:
        """Playlist vectors from CSR seeds: tokens (T,) song ids, segments (T,) row of each token,
        counts (b,) seeds per row (>= 1); ``title`` (b, dim) title vectors or None. ``items``
        (n_tracks, dim) reuses precomputed song vectors."""
        x = items[tokens] if items is not None else self.items.vectors(tokens)         # (T, dim)
        b, dim = counts.shape[0], x.shape[1]
        denom = counts.to(x.dtype).clamp_min(1).unsqueeze(1)                          # (b, 1)
        mean = x.new_zeros(b, dim).index_add_(0, segments, x) / denom                 # (b, dim)
        base = mean if title is None else mean + title                                # the title as one more seed
        h = self.mean_mlp(base)
        if self.var_mlp is not None:
            dev = (x - mean[segments]) ** 2                                           # (T, dim)
            var = x.new_zeros(b, dim).index_add_(0, segments, dev) / denom            # (b, dim)
            h = h + self.var_mlp(var)
        if self.config.residual:
            h = h + base
        return h                                                                      # (b, dim)

    def train_outputs(self, batch: dict, items: torch.Tensor | None = None):
        title = self.title_vectors(batch["title_offsets"], batch["title_ids"])
        return self.encode(batch["tokens"], batch["segments"], batch["counts"], items, title), batch["targets"]

    def playlist_vectors(self, indptr, indices, title_offsets, title_ids, items=None) -> torch.Tensor:
        tokens, segments, counts = seed_tensors(indptr, indices, self.device())
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(self.device())  # noqa: E731
        title = self.title_vectors(as_t(title_offsets), as_t(title_ids))
        return self.encode(tokens, segments, counts, items, title)

    def round_examples(self, seqs, config, rng):
        return meanvar_examples(seqs, config, rng)

    def collate(self, seqs, examples, titles, device, rng=None) -> dict:
        return collate_pairs(seqs, examples, titles, device)


def seed_tensors(indptr: np.ndarray, indices: np.ndarray, device=None):
    """CSR seeds -> (tokens, segments, counts) tensors for :meth:`MeanVarNet.encode`."""
    counts = np.diff(indptr).astype(np.int64)
    segments = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return as_t(indices.astype(np.int64)), as_t(segments), as_t(counts)


