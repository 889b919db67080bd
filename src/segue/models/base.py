"""The one interface every segue model honours, plus the registry and model-directory I/O.

A model is fitted on a :class:`~segue.data.store.Store` and recommends for a batch of playlists given
as seed track ids (int32, the store's ids)::

    model = get_model_class("cooccur")(config).fit(store)
    ids, scores = model.recommend(seeds, k=500, titles=titles)   # (n, k) int32, (n, k) float32

Subclasses implement ``_fit(store, progress)``, ``_score(indptr, indices, titles)`` returning dense
(batch, n_tracks) float32 scores, and ``_save_arrays(dir)`` / ``_load_arrays(dir)``. The base class
does the rest: input validation, batching, seed exclusion, top-k with -1/-inf padding, the title
fallback for playlists without seeds, and the model directory (``config.json`` + arrays).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from segue import __version__
from segue.config import config_from_dict
from segue.data.store import Store, csr_slice
from segue.errors import InputError, ModelError, NotFoundError
from segue.io import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
FALLBACK_DIR = "fallback"
# Dense score blocks are capped at this many floats (256 MB) per batch.
SCORE_BLOCK_FLOATS = 1 << 26

# name -> module; a new model is one module plus one line here.
MODEL_MODULES: dict[str, str] = {
    "popular": "segue.models.popular",
    "title": "segue.models.title",
    "cooccur": "segue.models.cooccur",
    "als": "segue.models.als",
    "meanvar": "segue.models.meanvar",
    "rerank": "segue.models.rerank",
}
_REGISTRY: dict[str, type["Recommender"]] = {}


def register(cls: type["Recommender"]) -> type["Recommender"]:
    """Class decorator: make a model available under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_models() -> list[str]:
    return list(MODEL_MODULES)


def get_model_class(name: str) -> type["Recommender"]:
    module = MODEL_MODULES.get(name)
    if module is None:
        raise NotFoundError(f"unknown model {name!r}; known models: {', '.join(MODEL_MODULES)}.")
    importlib.import_module(module)
    return _REGISTRY[name]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base config; models subclass it with their own frozen dataclass of hyperparameters."""


SeedsLike = "list[np.ndarray] | tuple[np.ndarray, np.ndarray] | sp.csr_matrix"


def as_seed_csr(seeds, n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalise seeds to CSR arrays (indptr int64, indices int32) and check every id is in range.

    Accepts a list of int arrays (one per playlist), an ``(indptr, indices)`` tuple, or a scipy
    sparse matrix with one row per playlist.
    """
    if sp.issparse(seeds):
        csr = sp.csr_matrix(seeds)
        if csr.shape[1] != n_tracks:
            raise InputError(f"seed matrix has {csr.shape[1]} columns but the model knows {n_tracks} tracks.")
        indptr, indices = csr.indptr.astype(np.int64), csr.indices.astype(np.int32)
    elif isinstance(seeds, tuple) and len(seeds) == 2:
        indptr = np.asarray(seeds[0], dtype=np.int64)
        indices = np.asarray(seeds[1], dtype=np.int32)
        if indptr.ndim != 1 or len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != len(indices):
            raise InputError("seed CSR is malformed: indptr must start at 0 and end at len(indices).")
        if np.any(np.diff(indptr) < 0):
            raise InputError("seed CSR is malformed: indptr must be non-decreasing.")
    else:
        rows = [np.asarray(s).reshape(-1) for s in seeds]
        for r, row in enumerate(rows):
            if row.size and not np.issubdtype(row.dtype, np.integer):
                raise InputError(f"seeds[{r}] should hold integer track ids, got dtype {row.dtype}.")
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.concatenate(rows).astype(np.int32) if rows and indptr[-1] else np.zeros(0, np.int32)
    if len(indices):
        bad = np.flatnonzero((indices < 0) | (indices >= n_tracks))
        if len(bad):
            row = int(np.searchsorted(indptr, bad[0], side="right") - 1)
            raise IndexError(
                f"seed track id {int(indices[bad[0]])} in playlist {row} is out of range "
                f"[0, {n_tracks}); map URIs with Store.track_ids and drop unknown ones (-1) first."
            )
    return indptr, indices


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense (b, n) block; -inf entries come back as id -1."""
    b, n = scores.shape
    kk = min(k, n)
    if kk < n:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(n), (b, n)).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[~np.isfinite(top) & (top < 0)] = -1
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return ids, top


class Recommender:
    """Base class of every model. See the module docstring for what subclasses implement."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = ModelConfig
    # Models that cannot use titles fall back to the title model for playlists without seeds.
    uses_title_fallback: ClassVar[bool] = True
    # Files the model writes beside config.json (for docs and checks).
    array_files: ClassVar[tuple[str, ...]] = ("arrays.npz",)

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise TypeError(f"{type(self).__name__} expects a {self.Config.__name__}, got {type(config).__name__}")
        self.n_tracks: int | None = None
        self.store_info: dict | None = None
        self.fallback: Recommender | None = None
        self.fit_info: dict = {}

    # ---- training ----------------------------------------------------------------------------
    def fit(self, train: Store, progress: bool = False) -> "Recommender":
        self.n_tracks = train.n_tracks
        self.store_info = {"path": str(train.path), "fingerprint": train.fingerprint, "n_tracks": train.n_tracks}
        self._fit(train, progress)
        if self.uses_title_fallback:
            self.fallback = get_model_class("title")().fit(train, progress=False)
        return self

    def _fit(self, train: Store, progress: bool) -> None:
        raise NotImplementedError

    # ---- inference ---------------------------------------------------------------------------
    def _score(self, indptr: np.ndarray, indices: np.ndarray, titles: list[str | None] | None) -> np.ndarray:
        """Dense (batch, n_tracks) float32 scores; higher is better; -inf means never recommend."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if self.n_tracks is None:
            raise ModelError(f"the {self.name} model is not fitted; call fit() or load() first.")

    def batch_rows(self) -> int:
        """How many playlists to score per dense block."""
        return int(max(1, min(1024, SCORE_BLOCK_FLOATS // max(1, self.n_tracks or 1))))

    def recommend(self, seeds, k: int = 500, titles: list[str | None] | None = None,
                  exclude_seeds: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` tracks per playlist: ``(ids (n, k) int32, scores (n, k) float32)``.

        Rows with fewer than ``k`` candidates are padded with id -1 and score -inf.
        """
        self._check_fitted()
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        indptr, indices = as_seed_csr(seeds, self.n_tracks)
        n = len(indptr) - 1
        if titles is not None and len(titles) != n:
            raise InputError(f"got {len(titles)} titles for {n} playlists; pass one title (or None) per playlist.")
        ids = np.full((n, k), -1, dtype=np.int32)
        out = np.full((n, k), -np.inf, dtype=np.float32)
        step = self.batch_rows()
        for start in range(0, n, step):
            stop = min(n, start + step)
            sub_ptr, sub_idx = csr_slice(indptr, indices, start, stop)
            sub_titles = titles[start:stop] if titles is not None else None
            block = self._score_with_fallback(sub_ptr, sub_idx, sub_titles)
            if exclude_seeds and len(sub_idx):
                rows = np.repeat(np.arange(stop - start), np.diff(sub_ptr))
                block[rows, sub_idx] = -np.inf
            ids[start:stop], out[start:stop] = top_k(block, k)
        return ids, out

    def _score_with_fallback(self, indptr, indices, titles) -> np.ndarray:
        lengths = np.diff(indptr)
        empty = np.flatnonzero(lengths == 0)
        if self.fallback is None or len(empty) == 0:
            return np.asarray(self._score(indptr, indices, titles), dtype=np.float32)
        scores = np.empty((len(lengths), self.n_tracks), dtype=np.float32)
        full = np.flatnonzero(lengths > 0)
        if len(full):
            sub_ptr = np.concatenate([[0], np.cumsum(lengths[full])])
            sub_titles = [titles[i] for i in full] if titles is not None else None
            scores[full] = self._score(sub_ptr, indices, sub_titles)
        empty_titles = [titles[i] for i in empty] if titles is not None else None
        scores[empty] = self.fallback._score(np.zeros(len(empty) + 1, np.int64), np.zeros(0, np.int32), empty_titles)
        return scores

    # ---- persistence -------------------------------------------------------------------------
    def describe(self) -> dict:
        return {
            "model": self.name,
            "config": dataclasses.asdict(self.config),
            "segue_version": __version__,
            "store": self.store_info,
            "n_tracks": self.n_tracks,
            "fallback": self.fallback is not None,
            "fit_info": self.fit_info,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and the arrays to ``directory`` atomically (old content replaced whole)."""
        self._check_fitted()
        with atomic_dir(directory) as tmp:
            self._save_into(tmp)
        return Path(directory)

    def _save_into(self, directory: Path) -> None:
        self._save_arrays(directory)
        if self.fallback is not None:
            (directory / FALLBACK_DIR).mkdir()
            self.fallback._save_into(directory / FALLBACK_DIR)
        write_json(directory / CONFIG_FILE, self.describe())

    def _save_arrays(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_arrays(self, directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, directory: str | os.PathLike, store: Store | None = None) -> "Recommender":
        model = load_model(directory, store=store)
        if not isinstance(model, cls):
            raise ModelError(f"{directory} holds a {model.name!r} model, not {cls.name!r}.")
        return model


def read_model_config(directory: str | os.PathLike) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{directory} is not a segue model directory (no {CONFIG_FILE}). Train one with `segue train`.")
    return read_json(path)


def load_model(directory: str | os.PathLike, store: Store | None = None) -> Recommender:
    """Load any model from its directory; with ``store``, check it was trained on the same vocabulary."""
    directory = Path(directory)
    info = read_model_config(directory)
    cls = get_model_class(info.get("model", "?"))
    model = cls(config_from_dict(cls.Config, info.get("config", {})))
    model.n_tracks = info["n_tracks"]
    model.store_info = info.get("store")
    model.fit_info = info.get("fit_info", {})
    if store is not None:
        check_vocabulary(model, store, directory)
    try:
        model._load_arrays(directory)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{directory}: model arrays are missing or damaged ({exc}). Retrain the model.") from exc
    if info.get("fallback"):
        model.fallback = load_model(directory / FALLBACK_DIR)
    return model


def check_vocabulary(model: Recommender, store: Store, where) -> None:
    expected = (model.store_info or {}).get("fingerprint")
    if expected != store.fingerprint:
        raise ModelError(
            f"model {where} was trained on a store with another track vocabulary "
            f"({expected}) than {store.path} ({store.fingerprint}); pass the store it was trained on "
            "with --store, or retrain the model on this store."
        )


def open_model_and_store(directory: str | os.PathLike, store_path: str | os.PathLike | None = None
                         ) -> tuple[Recommender, Store]:
    """Load a model and the store it was trained on (or ``store_path``), checking they match."""
    info = read_model_config(directory)
    path = store_path or (info.get("store") or {}).get("path")
    if not path:
        raise ModelError(f"{directory}: config.json records no store; pass --store.")
    if not Path(path).exists():
        raise ModelError(f"{directory} was trained on the store {path}, which no longer exists; pass --store.")
    store = Store.open(path)
    return load_model(directory, store=store), store


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez(path, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
