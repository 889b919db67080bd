"""The recommender side shared by segue's neural models: fit through the shared training loop, score every
song with one matrix product (or, on a large catalogue, the exact top k from the songs with the longest
vectors: ``segue.models._dot``), confidence, safetensors persistence and ``--nproc`` training.

A model module subclasses :class:`NeuralRecommender` with ``name``, ``Config``, ``Net`` (its
:class:`~segue.models.neural.layers.PlaylistNet`) and registers it; nothing else is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from segue.data.store import Store
from segue.models._dot import NormOrder, pruned_top_k
from segue.models.base import Recommender
from segue.models.neural.config import NeuralConfig
from segue.models.neural.distributed import launch
from segue.models.neural.layers import PlaylistNet, load_state, title_tokens
from segue.models.neural.training import check_finite_weights, train, warm_start_from_als

WEIGHTS_FILE = "model.safetensors"


class NeuralRecommender(Recommender):
    """A :class:`Recommender` around a :class:`PlaylistNet`; songs score ``h . v_song + bias_song``."""

    Net: ClassVar[type[PlaylistNet]] = PlaylistNet
    array_files = (WEIGHTS_FILE,)

    def __init__(self, config: NeuralConfig | None = None) -> None:
        super().__init__(config)
        self.net: PlaylistNet | None = None
        self._items: torch.Tensor | None = None
        self._out: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None
        self._norm: tuple[NormOrder | None] | None = None

    # ---- training ----------------------------------------------------------------------------------
    def build_net(self, store: Store, config: NeuralConfig, rows: np.ndarray) -> PlaylistNet:
        """A fresh network for ``store`` (song vectors from ALS on the training ``rows`` with ``init=als``)."""
        net = self.Net(config, store.n_tracks, track_album=store.track_album, track_artist=store.track_artist,
                       n_albums=store.n_albums, n_artists=store.n_artists)
        if config.init == "als":
            warm_start_from_als(net.items, store, rows, config)
        return net

    def _fit(self, store: Store, progress: bool) -> None:
        self.net, self.fit_info = train(store, self.config, self.build_net, name=self.name, progress=progress)
        self._cache()

    @classmethod
    def train_distributed(cls, store_path, out_dir, config: NeuralConfig | None = None, nproc: int = 2,
                          progress: bool = False, timeout: float | None = None) -> "NeuralRecommender":
        """Train with ``nproc`` DistributedDataParallel processes under torchrun; rank 0 writes ``out_dir``.

        gloo on CPU, NCCL on GPUs (``device`` config). Returns the trained model loaded from ``out_dir``.
        """
        launch(cls.name, store_path, out_dir, config or cls.Config(), nproc, progress=progress, timeout=timeout)
        return cls.load(out_dir)

    # ---- inference ---------------------------------------------------------------------------------
    def _cache(self) -> None:
        self.net.cpu().eval()
        with torch.no_grad():
            self._items = self.net.items.vectors().detach().float()
            self._out = self.net.output_vectors(items=self._items).detach().float()
            bias = self.net.output_bias()
            self._bias = bias.detach().float() if bias is not None else None
        self._norm = None  # the pruned top-k's song order, built on first use

    def _playlist_vectors(self, indptr, indices, titles) -> torch.Tensor:
        b = len(indptr) - 1
        if self.config.title:
            t_off, t_ids = title_tokens(titles, b, self.config.title_buckets)
        else:
            t_off, t_ids = np.zeros(b + 1, np.int64), np.zeros(0, np.int64)
        with torch.no_grad():
            return self.net.playlist_vectors(indptr, indices, t_off, t_ids, items=self._items)  # (b, dim)

    def _score(self, indptr, indices, titles) -> np.ndarray:
        h = self._playlist_vectors(indptr, indices, titles)
        with torch.no_grad():
            logits = h @ self._out.T                                                          # (b, n)
            if self._bias is not None:
                logits += self._bias
        return logits.numpy()

    def _pruned_top_k(self, indptr, indices, titles, k: int, exclude_seeds: bool):
        """The exact top-k from the songs with the longest output vectors (``segue.models._dot``); None for a
        small catalogue."""
        norm_order = self._norm_order()
        if norm_order is None:
            return None
        h = self._playlist_vectors(indptr, indices, titles).numpy()
        return pruned_top_k(norm_order, h, k, indptr, indices, exclude_seeds)

    def _norm_order(self) -> NormOrder | None:
        if self._norm is None:
            bias = self._bias.numpy() if self._bias is not None else None
            self._norm = (NormOrder.build(self._out.numpy(), bias),)
        return self._norm[0]

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
        check_finite_weights(self.net, self.name, self.config)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": f"segue-{self.name}", "version": "2"})

    def _load_arrays(self, directory: Path) -> None:
        self.net = load_state(self.Net, self.config, load_file(str(directory / WEIGHTS_FILE)))
        self._cache()
