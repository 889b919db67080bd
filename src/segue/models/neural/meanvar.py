"""``meanvar``, the seed's model, as a segue recommender: training, scoring, confidence and persistence.

The network is :class:`~segue.models.neural.meanvar_net.MeanVarNet`; training is the shared machinery of
:mod:`segue.models.neural.training` (``--nproc`` through :mod:`segue.models.neural.distributed`). Weights are
saved as safetensors next to the config JSON; nothing is pickled.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from segue.data.store import Store
from segue.models.base import Recommender, register
from segue.models.neural.distributed import launch
from segue.models.neural.meanvar_net import MeanVarConfig, MeanVarNet, net_from_state, seed_tensors
from segue.models.neural.training import check_finite_weights, train, warm_start_from_als

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"


def build_net(store: Store, config: MeanVarConfig, rows: np.ndarray) -> MeanVarNet:
    """A fresh :class:`MeanVarNet` for ``store`` (song vectors from ALS on ``rows`` with ``init=als``)."""
    net = MeanVarNet(config, store.n_tracks, track_album=store.track_album, track_artist=store.track_artist,
                     n_albums=store.n_albums, n_artists=store.n_artists)
    if config.init == "als":
        warm_start_from_als(net.track_emb, store, rows, config)
    return net


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
        self.config.validate()
        self.net, self.fit_info = train(store, self.config, build_net, name=self.name, progress=progress)
        self._cache()

    @classmethod
    def train_distributed(cls, store_path, out_dir, config: MeanVarConfig | None = None, nproc: int = 2,
                          progress: bool = False, timeout: float | None = None) -> "MeanVar":
        """Train with ``nproc`` DistributedDataParallel processes under torchrun; rank 0 writes ``out_dir``.

        gloo on CPU, NCCL on GPUs (``device`` config). Returns the trained model loaded from ``out_dir``.
        """
        launch(cls.name, store_path, out_dir, config or cls.Config(), nproc, progress=progress, timeout=timeout)
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
        check_finite_weights(self.net, self.name, self.config)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "segue-meanvar", "version": "1"})

    def _load_arrays(self, directory: Path) -> None:
        state = load_file(str(directory / WEIGHTS_FILE))
        self.net = net_from_state(self.config, state)
        self._cache()
