"""The one interface every segue model honours, plus the registry and model-directory I/O.

A model is fitted on a :class:`~segue.data.store.Store` and recommends for a batch of playlists given
as seed track ids (int32, the store's ids)::

    model = get_model_class("cooccur")(config).fit(store)
    ids, scores = model.recommend(seeds, k=500, titles=titles)   # (n, k) int32, (n, k) float32

Subclasses implement ``_fit(store, progress)``, ``_score(indptr, indices, titles)`` returning dense
(batch, n_tracks) float32 scores, and ``_save_arrays(dir)`` / ``_load_arrays(dir)``. A model that reads how
the seeds were drawn (``reads_seed_order``) takes ``_score(indptr, indices, titles, first_seeds)``:
``recommend(..., first_seeds=...)`` says per playlist whether its seeds are its first tracks in order (a
playlist's start, the challenge's first-k categories) or a random sample of its positions (categories 8 and
10); the other models ignore it. The base class
does the rest: input validation, batching, seed exclusion, top-k with -1/-inf padding and ties broken by
track id, the title fallback for playlists without seeds, and the model directory (``config.json`` +
arrays). Helpers models share live in :mod:`segue.models._common`.

The title fallback (models whose config derives from :class:`FallbackConfig`) is a setting:
``fallback="title"`` fits a title model (once per store in a process) and saves it inside the model
directory, so the directory is self-contained; ``fallback=DIR`` uses the title model already trained in
DIR, shared by every model that names it (one copy on disk and, through the load cache, one in memory);
``fallback="none"`` lets the model answer playlists without seeds itself. A model directory records a
shared fallback by its path relative to the model directory, its absolute path and its ``model_id``, so
moving the two directories together, or the model directory alone, keeps working, and a fallback that was
retrained or removed since is refused with a clear error.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from segue import __version__
from segue.config import check_settings, config_from_dict
from segue.data.store import Store, csr_slice
from segue.errors import InputError, ModelError, NotFoundError, SegueError
from segue.io import atomic_dir, read_json, write_json
from segue.models._common import seed_rows

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
FALLBACK_DIR = "fallback"
# Dense score blocks are capped at this many floats (256 MB) per batch.
SCORE_BLOCK_FLOATS = 1 << 26
# A playlist takes the sparse candidate path (models that offer one) when it scores at most this share of the
# catalogue there; otherwise one dense row is cheaper.
CANDIDATE_SHARE = 0.125
# top_k samples every step-th score of a long row, step = n / (SAMPLE_SPACING * (k + 1)), to find a threshold
SAMPLE_SPACING = 16

# name -> module; a new model is one module plus one line here.
MODEL_MODULES: dict[str, str] = {
    "popular": "segue.models.popular",
    "title": "segue.models.title",
    "cooccur": "segue.models.cooccur",
    "als": "segue.models.als",
    "meanvar": "segue.models.neural.meanvar",
    "sequential": "segue.models.neural.sequential",
    "rerank": "segue.models.rerank",
}
_REGISTRY: dict[str, type["Recommender"]] = {}
# Title models in use, so models fitted on one store, or loaded with one shared fallback, hold one copy.
_FITTED_FALLBACKS: "weakref.WeakValueDictionary[tuple, Recommender]" = weakref.WeakValueDictionary()
_LOADED_FALLBACKS: "weakref.WeakValueDictionary[str, Recommender]" = weakref.WeakValueDictionary()


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
    """Base config; models subclass it with their own frozen dataclass of hyperparameters.

    Declare each setting's range with :func:`segue.config.setting`; it is checked on construction.
    """

    def __post_init__(self) -> None:
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class FallbackConfig(ModelConfig):
    """Config of a model that answers playlists without seeds (and blends titles) with the title model."""

    # "title": fit one and keep it in the model directory; "none"; or a trained title model's directory,
    # shared by the models that name it (one copy however many models use it)
    fallback: str = "title"


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
    """Row-wise top-k of a dense (b, n) block, best first; equal scores in ascending track id.

    NaN counts as -inf; -inf entries (never recommend) come back as id -1. Ties are broken by id even
    where they straddle the k-th place, so a row's result never depends on the rest of the block.
    Long rows are first cut to the entries at or above a threshold taken from a sample of each row (one
    comparison pass instead of a partition of the whole row); the result is the same.
    """
    b, n = scores.shape
    if b and n >= 2 * SAMPLE_SPACING * (k + 1):
        found = _top_k_above_sampled_threshold(scores, k)
        if found is not None:
            return found
    return _top_k_full(scores, k)


def _top_k_above_sampled_threshold(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`top_k` from the entries of each row at or above ``t``, a value from every ``step``-th entry that
    about ``4 (k + 1)`` entries reach; None when some row has fewer than ``k + 1`` such entries (or ``t``
    is not finite). Then every entry ranked up to k + 1, and every entry tied with the k-th, is kept: exact."""
    b, n = scores.shape
    step = max(1, n // (SAMPLE_SPACING * (k + 1)))
    sample = scores[:, ::step]
    rank = min(sample.shape[1], 4 * (k + 1) // step + 4)
    threshold = np.partition(sample, sample.shape[1] - rank, axis=1)[:, -rank]  # NaN sorts last: a high t
    if not np.isfinite(threshold).all():
        return None
    # flat positions, row-major: ids ascending in each row, so ties by position are by id (flatnonzero of the
    # whole block is ~10x faster than a 2-d nonzero, and its row boundaries give the counts)
    flat = np.flatnonzero(scores >= threshold[:, None])
    starts = np.searchsorted(flat, np.arange(b + 1, dtype=np.int64) * n)
    count = np.diff(starts)
    if (count < k + 1).any():
        return None
    rows, cols = np.divmod(flat, n)
    pos = np.arange(len(rows)) - np.repeat(starts[:-1], count)
    block = np.full((b, int(count.max())), -np.inf, dtype=scores.dtype)
    block_ids = np.full(block.shape, -1, dtype=np.int32)
    block[rows, pos], block_ids[rows, pos] = scores[rows, cols], cols
    found, top = _top_k_full(block, k)
    return np.where(found >= 0, np.take_along_axis(block_ids, np.maximum(found, 0), axis=1), -1), top


def _top_k_full(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    b, n = scores.shape
    kk = min(k, n)
    if kk < n:
        # partitioned at k-1 and k: the k-th best score and the best one left out, to spot a tie at the cut
        full = np.argpartition(-scores, (kk - 1, kk), axis=1)  # NaN sorts last: never in unless it must be
        part = full[:, :kk]
        kth, next_out = (np.take_along_axis(scores, full[:, i : i + 1], axis=1) for i in (kk - 1, kk))
        redo = np.flatnonzero((next_out == kth)[:, 0] & np.isfinite(kth[:, 0]))
        if len(redo):  # keep the entries above the k-th score, fill the rest with the lowest tied ids
            above = np.take_along_axis(scores[redo], part[redo], axis=1) > kth[redo]  # all are in the partition
            tie_row, tie_id = np.nonzero(scores[redo] == kth[redo])  # row-major: ids ascending in each row
            counts = np.bincount(tie_row, minlength=len(redo))
            rank = np.arange(len(tie_row)) - np.repeat(np.cumsum(counts) - counts, counts)
            first = rank < (kk - above.sum(axis=1))[tie_row]
            rows = np.concatenate([np.nonzero(above)[0], tie_row[first]])
            ids = np.concatenate([part[redo][above], tie_id[first]])
            part[redo] = ids[np.argsort(rows, kind="stable")].reshape(len(redo), kk)
    else:
        part = np.broadcast_to(np.arange(n), (b, n))
    part_scores = np.take_along_axis(scores, part, axis=1)
    part_scores[np.isnan(part_scores)] = -np.inf
    order = np.lexsort((part, -part_scores), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[np.isneginf(top)] = -1
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return ids, top


@dataclasses.dataclass(frozen=True)
class Candidates:
    """What a model offers for the sparse path of :meth:`Recommender.recommend` (one batch of playlists).

    Each row's dense scores are a *background* that depends on the track only through a fixed order, plus
    *support* entries where the row differs from it. ``score`` must give, at any ``(row, track)``, exactly the
    float the dense path computes there, with support entries never below the background, and the background
    non-increasing along ``order`` (tracks best first). Then every track outside a row's support and outside
    ``order[:m]`` scores at most the background at the first track of ``order[m:]`` off the support, which
    bounds what the sparse path may miss. (cooccur and title offer one; dense-only models return None.)
    """

    support_rows: np.ndarray  # (e,) row of each support entry (duplicates allowed)
    support_cols: np.ndarray  # (e,) its track
    order: np.ndarray  # (n_tracks,) int32, background best first
    group_end: np.ndarray  # (n_tracks,) int32: the first position after the run of equal popularity at each
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows, tracks) -> float32 dense scores


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique of an int array by one sort (numpy's hashing unique is slower for these sizes). The keys
    here are mostly ascending runs (row-major CSR entries): timsort (``stable``) merges runs in linear time,
    ~10x faster than quicksort on them."""
    values = np.sort(values, kind="stable")
    return values[np.append(True, values[1:] != values[:-1])] if len(values) else values


def _contains(sorted_unique: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``sorted_unique``."""
    pos = np.minimum(np.searchsorted(sorted_unique, values), max(len(sorted_unique) - 1, 0))
    return sorted_unique[pos] == values if len(sorted_unique) else np.zeros(len(values), dtype=bool)


def as_first_seeds(first_seeds, n: int) -> np.ndarray:
    """``recommend``'s ``first_seeds`` as (n,) bool (None: all True), or a clear error."""
    if first_seeds is None:
        return np.ones(n, dtype=bool)
    values = np.asarray(first_seeds)
    if values.shape != (n,) or not (values.dtype == bool or np.isin(values, (0, 1)).all()):
        raise InputError(f"first_seeds should be one bool per playlist ({n}), got shape {values.shape} of "
                         f"{values.dtype}; pass True where the seeds are a playlist's first tracks.")
    return values.astype(bool)


def take_rows(indptr: np.ndarray, indices: np.ndarray, titles, rows: np.ndarray):
    """Rows ``rows`` of a seed CSR batch and their titles, as a batch of their own."""
    if len(rows) == len(indptr) - 1:
        return indptr, indices, titles
    lengths = np.diff(indptr)[rows]
    sub_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=sub_ptr[1:])
    starts = np.repeat(indptr[rows] - sub_ptr[:-1], lengths)
    sub_idx = indices[np.arange(sub_ptr[-1]) + starts]
    return sub_ptr, sub_idx, [titles[r] for r in rows] if titles is not None else None


def order_groups(popularity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tracks by ``popularity`` descending, ties by lower id, and where each run of equal values ends."""
    n = len(popularity)
    order = np.lexsort((np.arange(n), -popularity)).astype(np.int32)
    ordered = popularity[order]
    ends = np.append(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, n)
    return order, np.repeat(ends, np.diff(ends, prepend=0)).astype(np.int32)


def candidate_top_k(cand: Candidates, n_tracks: int, seed_ptr: np.ndarray, seed_idx: np.ndarray, k: int,
                    exclude_seeds: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise top-k as :func:`top_k` ranks the dense scores, from each row's support and the head of the
    background order: ``(ids, scores, exact)``; rows with ``exact`` False must be scored densely instead.

    A row's head is ``order[:m]``, ``m`` at least ``k`` + its seeds + 1 and then to the end of a run of equal
    popularity (a tie at the cut is never split); the row is exact when its k-th score beats the background at
    the first track past the head that is off its support, the most any track left out can score.
    """
    b = len(seed_ptr) - 1
    support = _sorted_unique(cand.support_rows.astype(np.int64) * n_tracks + cand.support_cols)
    support_count = np.bincount(support // n_tracks, minlength=b)
    take = cand.group_end[np.minimum(k + np.diff(seed_ptr) + 1, n_tracks) - 1].astype(np.int64)
    exact = take + support_count <= CANDIDATE_SHARE * n_tracks
    take[~exact] = 0
    head_rows = np.repeat(np.arange(b), take)
    head_pos = np.arange(len(head_rows)) - np.repeat(np.cumsum(take) - take, take)
    keys = _sorted_unique(np.concatenate([support[exact[support // n_tracks]],
                                          head_rows * n_tracks + cand.order[head_pos]]))
    rows, cols = keys // n_tracks, (keys % n_tracks).astype(np.int32)
    scores = np.asarray(cand.score(rows, cols), dtype=np.float32)
    if exclude_seeds and len(seed_idx):
        scores[_contains(_sorted_unique(seed_rows(seed_ptr) * n_tracks + seed_idx), keys)] = -np.inf
    # each row's candidates side by side, in id order (keys are sorted): top_k's ties by position are by id
    count = np.bincount(rows, minlength=b)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    block = np.full((b, max(1, int(count.max(initial=0)))), -np.inf, dtype=np.float32)
    block_ids = np.full(block.shape, -1, dtype=np.int32)
    block[rows, pos], block_ids[rows, pos] = scores, cols
    found, out = top_k(block, k)
    ids = np.where(found >= 0, np.take_along_axis(block_ids, np.maximum(found, 0), axis=1), -1).astype(np.int32)
    # the bound: the background at the first track of order[take:] off the row's support (the tracks after it
    # score no more); looked for in the next 64 places first, then as far as the support reaches
    bound = np.full(b, -np.inf, dtype=np.float32)
    todo = np.flatnonzero(exact & (take < n_tracks))
    for limit in (64, n_tracks):
        span = np.minimum(np.minimum(support_count[todo] + 1, limit), n_tracks - take[todo])
        look_rows = np.repeat(todo, span)
        look_pos = np.repeat(take[todo] - np.cumsum(span) + span, span) + np.arange(len(look_rows))
        off = ~_contains(support, look_rows * n_tracks + cand.order[look_pos])
        first = np.flatnonzero(off)
        first = first[np.append(True, np.diff(look_rows[first]) != 0)] if len(first) else first  # first per row
        first_rows = look_rows[first]
        bound[first_rows] = cand.score(first_rows, cand.order[look_pos[first]])
        todo = np.setdiff1d(todo, first_rows)
    kth = out[:, k - 1]
    exact &= np.isfinite(kth) & (np.where(np.isnan(bound), np.inf, bound) < kth)
    return ids, out, exact


class Recommender:
    """Base class of every model. See the module docstring for what subclasses implement."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = ModelConfig
    # Models that cannot use titles fall back to the title model for playlists without seeds.
    uses_title_fallback: ClassVar[bool] = True
    # Files the model writes beside config.json (for docs and checks).
    array_files: ClassVar[tuple[str, ...]] = ("arrays.npz",)
    # Models whose _score takes first_seeds too (see the module docstring).
    reads_seed_order: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise TypeError(f"{type(self).__name__} expects a {self.Config.__name__}, got {type(config).__name__}")
        self.n_tracks: int | None = None
        self.store_info: dict | None = None
        self.fallback: Recommender | None = None
        self.fit_info: dict = {}
        self.model_id: str | None = None  # new on every fit; a model sharing this one as fallback records it
        self._fallback_ref: dict | None = None  # where a shared fallback lives (see the module docstring)

    # ---- training ----------------------------------------------------------------------------
    def fit(self, train: Store, progress: bool = False) -> "Recommender":
        self.n_tracks = train.n_tracks
        self.store_info = {"path": str(train.path), "fingerprint": train.fingerprint, "n_tracks": train.n_tracks}
        self.model_id = uuid.uuid4().hex
        self.fallback, self._fallback_ref = None, None
        if self.uses_title_fallback:
            self._fit_fallback(train)
        self._fit(train, progress)
        return self

    def _fit(self, train: Store, progress: bool) -> None:
        raise NotImplementedError

    def _fit_fallback(self, train: Store) -> None:
        choice = getattr(self.config, "fallback", "title")
        if choice == "none":
            return
        if choice == "title":
            key = (str(Path(train.path).resolve()), train.fingerprint, train.n_playlists, train.n_entries,
                   train.manifest.get("created_at"))
            self.fallback = _FITTED_FALLBACKS.get(key)
            if self.fallback is None:
                self.fallback = _FITTED_FALLBACKS[key] = get_model_class("title")().fit(train, progress=False)
            return
        directory = Path(choice).expanduser().absolute()
        if not (directory / CONFIG_FILE).is_file():
            raise InputError(f"setting fallback={choice!r}: expected title, none, or the directory of a trained "
                             "title model (train one with `segue train title --out DIR`).")
        fallback = _load_fallback(directory)
        if fallback.name != "title":
            raise InputError(f"setting fallback={choice!r}: {directory} holds a {fallback.name} model, "
                             "not a title model.")
        check_vocabulary(fallback, train, directory)
        self.fallback = fallback
        self.config = dataclasses.replace(self.config, fallback=str(directory))
        self._fallback_ref = {"kind": "shared", "absolute": str(directory), "model_id": fallback.model_id}

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
                  exclude_seeds: bool = True, first_seeds=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` tracks per playlist: ``(ids (n, k) int32, scores (n, k) float32)``.

        ``first_seeds``: one bool per playlist, True when its seeds are its first tracks in playlist order,
        False when they are a random sample of its positions; None: all True (the start of a playlist).

        Equal scores are ordered by track id; rows with fewer than ``k`` candidates are padded with id -1
        and score -inf.
        """
        self._check_fitted()
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        indptr, indices = as_seed_csr(seeds, self.n_tracks)
        n = len(indptr) - 1
        if titles is not None and len(titles) != n:
            raise InputError(f"got {len(titles)} titles for {n} playlists; pass one title (or None) per playlist.")
        first_seeds = as_first_seeds(first_seeds, n)
        ids = np.full((n, k), -1, dtype=np.int32)
        out = np.full((n, k), -np.inf, dtype=np.float32)
        step = self.batch_rows()
        for start in range(0, n, step):
            stop = min(n, start + step)
            sub_ptr, sub_idx = csr_slice(indptr, indices, start, stop)
            sub_titles = titles[start:stop] if titles is not None else None
            ids[start:stop], out[start:stop] = self._top_k_block(sub_ptr, sub_idx, sub_titles, k, exclude_seeds,
                                                                 first_seeds[start:stop])
        return ids, out

    def _top_k_block(self, indptr, indices, titles, k: int, exclude_seeds: bool,
                     first_seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of one block of playlists: sparse candidates where the model offers them and they are exact
        (the same ids and scores as the dense row), then a pruned exact top-k where the model offers one, a
        dense score row for the rest."""
        n = len(indptr) - 1
        ids = np.full((n, k), -1, dtype=np.int32)
        out = np.full((n, k), -np.inf, dtype=np.float32)
        dense = np.ones(n, dtype=bool)
        lengths = np.diff(indptr)
        parts = [(self, lengths > 0), (self.fallback, lengths == 0)] if self.fallback is not None else [(self, None)]
        for model, mask in parts:
            rows = np.arange(n) if mask is None else np.flatnonzero(mask)
            if len(rows) == 0:
                continue
            sub_ptr, sub_idx, sub_titles = take_rows(indptr, indices, titles, rows)
            cand = model._candidates(sub_ptr, sub_idx, sub_titles)
            if cand is None:
                continue
            found, scores, exact = candidate_top_k(cand, self.n_tracks, sub_ptr, sub_idx, k, exclude_seeds)
            ids[rows[exact]], out[rows[exact]] = found[exact], scores[exact]
            dense[rows[exact]] = False
        rows = np.flatnonzero(dense & (lengths > 0))
        if len(rows):  # seeded rows of a model that can rank them exactly from part of the catalogue
            sub_ptr, sub_idx, sub_titles = take_rows(indptr, indices, titles, rows)
            found = self._pruned_top_k(sub_ptr, sub_idx, sub_titles, k, exclude_seeds)
            if found is not None:
                found_ids, scores, exact = found
                ids[rows[exact]], out[rows[exact]] = found_ids[exact], scores[exact]
                dense[rows[exact]] = False
        rows = np.flatnonzero(dense)
        if len(rows):
            sub_ptr, sub_idx, sub_titles = take_rows(indptr, indices, titles, rows)
            block = self._score_with_fallback(sub_ptr, sub_idx, sub_titles, first_seeds[rows])
            if exclude_seeds and len(sub_idx):
                block[seed_rows(sub_ptr), sub_idx] = -np.inf
            ids[rows], out[rows] = top_k(block, k)
        return ids, out

    def approximate_recommender(self, directory: Path, progress: bool = False) -> Callable | None:
        """A faster, approximate ``recommend(seeds, k, titles)`` for serving a large catalogue, its index kept in
        ``directory`` (built there on first use), or None when the model has none. Evaluation never uses it."""
        return None

    def background_order(self) -> tuple[np.ndarray, np.ndarray]:
        """For models with a ``popularity`` array (the sparse path's background): tracks by popularity, best
        first, and the ends of its runs of equal popularity (:func:`order_groups`), built once per fit or load."""
        if getattr(self, "_order", None) is None:
            self._order = order_groups(self.popularity)
        return self._order

    def _pruned_top_k(self, indptr: np.ndarray, indices: np.ndarray, titles, k: int, exclude_seeds: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For seeded playlists: ``(ids, scores, exact)`` as :func:`top_k` ranks the dense scores, found without
        scoring the whole catalogue, rows with ``exact`` False to be scored densely; or None (dense only).
        Embedding models offer one (``segue.models._dot``)."""
        return None

    def _candidates(self, indptr: np.ndarray, indices: np.ndarray, titles) -> Candidates | None:
        """The sparse path's view of these playlists' scores (see :class:`Candidates`), or None (dense only)."""
        return None

    def _score_with_fallback(self, indptr, indices, titles, first_seeds: np.ndarray | None = None) -> np.ndarray:
        lengths = np.diff(indptr)
        empty = np.flatnonzero(lengths == 0)
        if self.fallback is None or len(empty) == 0:
            return np.asarray(self._score_seeds(indptr, indices, titles, first_seeds), dtype=np.float32)
        scores = np.empty((len(lengths), self.n_tracks), dtype=np.float32)
        full = np.flatnonzero(lengths > 0)
        if len(full):
            sub_ptr = np.concatenate([[0], np.cumsum(lengths[full])])
            sub_titles = [titles[i] for i in full] if titles is not None else None
            scores[full] = self._score_seeds(sub_ptr, indices, sub_titles,
                                             first_seeds[full] if first_seeds is not None else None)
        empty_titles = [titles[i] for i in empty] if titles is not None else None
        scores[empty] = self.fallback._score(np.zeros(len(empty) + 1, np.int64), np.zeros(0, np.int32), empty_titles)
        return scores

    def _score_seeds(self, indptr, indices, titles, first_seeds: np.ndarray | None) -> np.ndarray:
        """``_score``, given ``first_seeds`` too where the model reads it (None: all first)."""
        if not self.reads_seed_order:
            return self._score(indptr, indices, titles)
        return self._score(indptr, indices, titles, as_first_seeds(first_seeds, len(indptr) - 1))

    # ---- persistence -------------------------------------------------------------------------
    def describe(self) -> dict:
        return {
            "model": self.name,
            "model_id": self.model_id,
            "config": dataclasses.asdict(self.config),
            "segue_version": __version__,
            "store": self.store_info,
            "n_tracks": self.n_tracks,
            "fallback": self._fallback_ref or ({"kind": "embedded", "dir": FALLBACK_DIR} if self.fallback else None),
            "fit_info": self.fit_info,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and the arrays to ``directory`` atomically (old content replaced whole)."""
        self._check_fitted()
        target = Path(directory).absolute()
        if self._fallback_ref is not None:  # where the shared fallback is, seen from the final directory
            self._fallback_ref["path"] = os.path.relpath(self._fallback_ref["absolute"], target)
        with atomic_dir(target) as tmp:
            self._save_into(tmp)
        return Path(directory)

    def _save_into(self, directory: Path) -> None:
        self._save_arrays(directory)
        if self.fallback is not None and self._fallback_ref is None:
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


def damaged_model(directory, file: str, reason) -> ModelError:
    return ModelError(f"model {directory} is damaged ({file}: {reason}); retrain it with `segue train`.")


def read_model_config(directory: str | os.PathLike) -> dict:
    """The checked ``config.json`` of a model directory (``ModelError`` if missing or damaged)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{directory} is not a segue model directory (no {CONFIG_FILE}). Train one with `segue train`.")
    try:
        info = read_json(path)
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise damaged_model(directory, CONFIG_FILE, exc) from exc
    if not isinstance(info, dict):
        raise damaged_model(directory, CONFIG_FILE, "not a JSON object")
    for key, kind in (("model", str), ("n_tracks", int), ("config", dict)):
        if key not in info:
            raise damaged_model(directory, CONFIG_FILE, f"no {key!r}")
        if not isinstance(info[key], kind) or isinstance(info[key], bool):
            raise damaged_model(directory, CONFIG_FILE, f"{key!r} is {info[key]!r}")
    return info


def load_model(directory: str | os.PathLike, store: Store | None = None) -> Recommender:
    """Load any model from its directory; with ``store``, check it was trained on the same vocabulary."""
    directory = Path(directory)
    info = read_model_config(directory)
    try:
        cls = get_model_class(info["model"])
    except NotFoundError as exc:
        raise damaged_model(directory, CONFIG_FILE, exc) from exc
    try:
        config = config_from_dict(cls.Config, info["config"])
    except (InputError, TypeError) as exc:
        raise damaged_model(directory, CONFIG_FILE, exc) from exc
    model = cls(config)
    model.n_tracks = info["n_tracks"]
    model.store_info = info.get("store")
    model.fit_info = info.get("fit_info", {})
    model.model_id = info.get("model_id")
    if store is not None:
        check_vocabulary(model, store, directory)
    try:
        model._load_arrays(directory)
    except SegueError:
        raise
    except Exception as exc:  # truncated or corrupt files fail in many ways (BadZipFile, EOFError, ...)
        raise damaged_model(directory, ", ".join(cls.array_files), exc) from exc
    ref = info.get("fallback")
    if ref:
        model.fallback, model._fallback_ref = _find_fallback(directory, ref)
        if model._fallback_ref is not None:  # where the shared fallback was found this time
            model.config = dataclasses.replace(model.config, fallback=model._fallback_ref["absolute"])
        if (model.fallback.store_info or {}).get("fingerprint") != (model.store_info or {}).get("fingerprint"):
            raise damaged_model(directory, FALLBACK_DIR, "its title model was trained on another track vocabulary")
    return model


def _find_fallback(directory: Path, ref) -> tuple[Recommender, dict | None]:
    """The fallback a model directory records: embedded in it, or shared (see the module docstring)."""
    if ref is True or (isinstance(ref, dict) and ref.get("kind") == "embedded"):
        return _load_fallback(directory / FALLBACK_DIR), None
    if not isinstance(ref, dict) or ref.get("kind") != "shared":
        raise damaged_model(directory, CONFIG_FILE, f"unknown fallback {ref!r}")
    candidates = [directory / str(ref.get("path", "")), Path(str(ref.get("absolute", "")))]
    for candidate in candidates:
        if (candidate / CONFIG_FILE).is_file() and read_model_config(candidate).get("model_id") == ref.get("model_id"):
            fallback = _load_fallback(candidate)
            return fallback, {**ref, "absolute": str(candidate.absolute())}
    raise ModelError(
        f"model {directory} answers playlists without seeds with the title model it was trained with, at "
        f"{ref.get('absolute')} ({ref.get('path')} from the model directory), which is missing or was retrained "
        "since; put that title model back, or retrain the model (e.g. with --set fallback=title)."
    )


def _load_fallback(directory: Path) -> Recommender:
    """A title model, loaded once per process however many models use it."""
    model_id = read_model_config(directory).get("model_id")
    model = _LOADED_FALLBACKS.get(model_id) if model_id else None
    if model is None:
        model = load_model(directory)
        if model_id:
            _LOADED_FALLBACKS[model_id] = model
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
