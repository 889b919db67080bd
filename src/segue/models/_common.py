"""Helpers several models share: sparse top-n, CSR arrays in ``.npz`` files, row scaling, title blending
(dense, and term by term as :class:`ScaledBlend`), track popularity. Models import these from here, never from
each other's modules.

Everything is vectorised over whole CSR matrices or dense score blocks; ties are broken by the lower column
(track) id, so results never depend on how a batch was split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from segue.arrays import load_arrays, save_arrays
from segue.data.store import Store

POPULARITY_KINDS = ("playlists", "entries")


# ---- popularity ------------------------------------------------------------------------------
def track_popularity(store: Store, kind: str = "playlists", binary: sp.csr_matrix | None = None) -> np.ndarray:
    """(n_tracks,) float64 count per track: distinct playlists holding it (``"playlists"``) or entries
    with repeats (``"entries"``). Pass ``binary`` (``store.csr(binary=True)``) when you already built it."""
    if kind == "entries":
        return store.track_count.astype(np.float64)
    if kind != "playlists":
        raise ValueError(f"popularity kind {kind!r} is not one of {', '.join(POPULARITY_KINDS)}")
    binary = store.csr(binary=True) if binary is None else binary
    return np.bincount(binary.indices, minlength=store.n_tracks).astype(np.float64)


# ---- sparse matrices -------------------------------------------------------------------------
def sparse_top_n(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row of a CSR matrix; among values tied at the cut, the lower
    columns are kept.

    Only rows with more than ``n`` entries are sorted: one argsort of a (row, value) key finds each row's
    ``n``-th largest value, then the entries above it stay and the ties at it are settled by column.
    """
    matrix = sp.csr_matrix(matrix)
    if n <= 0:
        return sp.csr_matrix(matrix.shape, dtype=matrix.dtype)
    counts = np.diff(matrix.indptr)
    heavy_rows = np.flatnonzero(counts > n)
    if len(heavy_rows) == 0:
        return matrix
    heavy = np.flatnonzero(np.repeat(counts > n, counts))  # entry positions in heavy rows
    heavy_counts = counts[heavy_rows]
    row = np.repeat(np.arange(len(heavy_rows)), heavy_counts)  # the heavy row of each entry, 0..H-1
    values = matrix.data[heavy]
    order = np.argsort(_row_value_key(row, values))  # by row, then value descending
    nth = np.repeat(values[order[np.cumsum(heavy_counts) - heavy_counts + n - 1]], heavy_counts)
    keep_heavy = values > nth
    tied = np.flatnonzero(values == nth)
    tied = tied[np.lexsort((matrix.indices[heavy[tied]], row[tied]))]  # by row, then column
    tie_counts = np.bincount(row[tied], minlength=len(heavy_rows))
    rank = np.arange(len(tied)) - np.repeat(np.cumsum(tie_counts) - tie_counts, tie_counts)
    slots = n - np.bincount(row[keep_heavy], minlength=len(heavy_rows))
    keep_heavy[tied[rank < slots[row[tied]]]] = True
    keep = np.ones(matrix.nnz, dtype=bool)
    keep[heavy] = keep_heavy
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.minimum(counts, n), out=indptr[1:])
    return sp.csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


def _row_value_key(row: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A key whose ascending order is row, then value descending: float32 bits packed beside the row
    (exact, one 64-bit sort), or a lexsort order for other dtypes."""
    if values.dtype != np.float32:
        return np.argsort(np.lexsort((-values, row)))  # the rank of each entry in that order
    bits = values.view(np.uint32)
    ascending = np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31))  # unsigned order = float order
    return (row.astype(np.uint64) << np.uint64(32)) | (~ascending).astype(np.uint64)


def csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The arrays of a CSR matrix under ``PREFIX_data/_indices/_indptr`` keys, for :func:`save_npz`."""
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices, f"{prefix}_indptr": matrix.indptr}


def csr_from(prefix: str, arrays: dict[str, np.ndarray], shape: tuple[int, int]) -> sp.csr_matrix:
    """The CSR matrix :func:`csr_arrays` stored; raises ``ValueError`` when the arrays do not fit ``shape``."""
    data, indices, indptr = (arrays[f"{prefix}_{part}"] for part in ("data", "indices", "indptr"))
    if len(indptr) != shape[0] + 1 or len(data) != len(indices) or (len(indptr) and indptr[-1] != len(indices)):
        raise ValueError(f"{prefix} arrays do not form a CSR matrix of shape {shape}")
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
        raise ValueError(f"{prefix} has column ids outside [0, {shape[1]})")
    return sp.csr_matrix((data, indices, indptr), shape=shape)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    save_arrays(path, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, memory-mapped read-only where it can be (:mod:`segue.arrays`): a
    model must copy an array before changing it."""
    return load_arrays(path)


# ---- dense score blocks ----------------------------------------------------------------------
def seed_rows(indptr: np.ndarray) -> np.ndarray:
    """(nnz,) the row of each seed of a CSR batch."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def scale_rows(scores: np.ndarray) -> np.ndarray:
    """Divide each row by its largest finite value, in place (rows without a positive value are left alone)."""
    top = np.max(scores, axis=1, keepdims=True, initial=0.0)  # one fast pass; right wherever it is finite
    redo = np.flatnonzero(~np.isfinite(top[:, 0]))
    if len(redo):
        top[redo] = np.max(scores[redo], axis=1, keepdims=True, where=np.isfinite(scores[redo]), initial=0.0)
    top[top <= 0] = 1.0
    scores /= top
    return scores


def titled_rows(indptr: np.ndarray, titles, title_model, weight: float, decay: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """The rows that blend in the title model's scores, and each one's weight ``weight / n_seeds ** decay``."""
    if weight <= 0 or title_model is None or titles is None:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows = np.flatnonzero(np.fromiter((bool(t) for t in titles), dtype=bool, count=len(indptr) - 1))
    n_seeds = np.maximum(np.diff(indptr)[rows], 1).astype(np.float32)
    return rows, weight / n_seeds**decay


def blend_titles(scores: np.ndarray, indptr: np.ndarray, titles, title_model, weight: float,
                 decay: float) -> np.ndarray:
    """Add ``weight / n_seeds ** decay`` times the title model's row-scaled scores to titled rows, in place."""
    rows, factor = titled_rows(indptr, titles, title_model, weight, decay)
    if len(rows):
        title_model.add_scaled_scores(scores, rows, [titles[r] for r in rows], factor)
    return scores


def csr_values_at(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[i], cols[i]]`` for every i (0 where nothing is stored), vectorised; ``matrix`` must have
    sorted indices and no duplicates (canonical, as a scipy product returns it)."""
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    n = matrix.shape[1]
    stored = seed_rows(matrix.indptr).astype(np.int64) * n + matrix.indices  # ascending when canonical
    wanted = np.asarray(rows, dtype=np.int64) * n + cols
    pos = np.minimum(np.searchsorted(stored, wanted), max(len(stored) - 1, 0))
    hit = stored[pos] == wanted if len(stored) else np.zeros(len(wanted), dtype=bool)
    return np.where(hit, matrix.data[pos] if len(stored) else 0, 0).astype(matrix.dtype)


@dataclasses.dataclass(frozen=True)
class ScaledBlend:
    """What the title model adds to score rows (``blend_titles``), term by term, for exact top-k without the
    dense rows: for blend row ``r`` and track ``j``, ``factor_r * dense_rj / best_r``, where ``dense_rj`` is
    ``part_rj + coef_r * weight_j`` (``values`` at the part's entries; -inf where ``never``). Every value is
    computed in float32 in one order, for the dense rows (:meth:`add_to`, the title model's ``add_scaled_scores``)
    and term by term alike, so both agree bit for bit."""

    part: sp.csr_matrix  # (r, n_tracks) the sparse part (distinct columns in a row, in any order)
    values: np.ndarray  # (nnz,) float32 dense scores at the part's entries
    coef: np.ndarray  # (r,) float32 popularity coefficient, >= 0
    best: np.ndarray  # (r,) float32 each dense row's largest finite score (1 when none is > 0)
    factor: np.ndarray  # (r,) float32 blend weight
    weight: np.ndarray  # (n_tracks,) float32 background weight (popularity share), >= 0
    never: np.ndarray  # (n_tracks,) bool: -inf

    def add_to(self, scores: np.ndarray, rows: np.ndarray) -> None:
        """Add the blend to ``scores[rows[i]]`` (every track) for each blend row i, in place: the background in
        one pass over the rows, then the support set from the values it held before. ``rows`` ascending."""
        t_rows = seed_rows(self.part.indptr)
        on_support = self.support_added(t_rows, np.arange(self.part.nnz), scores[rows[t_rows], self.part.indices])
        background = self._background(slice(None), slice(None))
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1:  # consecutive rows (one request): a view, no copy
            scores[rows[0] : rows[-1] + 1] += background
        else:
            scores[rows] += background
        scores[rows[t_rows], self.part.indices] = on_support
        never = np.flatnonzero(self.never)
        if len(never):
            scores[rows[:, None], never[None, :]] = -np.inf

    def background_added(self, rows: np.ndarray, cols: np.ndarray, base: np.ndarray) -> np.ndarray:
        """``base`` (len(rows), len(cols)) plus the background of blend rows ``rows`` at tracks ``cols``, as it
        is added off the support (-inf at ``never`` tracks)."""
        background = self._background(rows, cols)
        background += base
        background[:, self.never[cols]] = -np.inf
        return background

    def _background(self, rows, cols) -> np.ndarray:
        """``factor * coef * weight / best`` at blend rows ``rows`` x tracks ``cols`` (indices or slices)."""
        background = self.coef[rows, None] * self.weight[None, cols]
        background /= self.best[rows, None]
        background *= self.factor[rows, None]
        return background

    def support_added(self, rows: np.ndarray, entries: np.ndarray, base: np.ndarray) -> np.ndarray:
        """``base`` plus the blend at the part's ``entries`` (of blend rows ``rows``), as it is set on the support."""
        out = base + self.factor[rows] * (self.values[entries] / self.best[rows])
        out[self.never[self.part.indices[entries]]] = -np.inf
        return out

    def support_bound(self, rows: np.ndarray, entries: np.ndarray, base_upper: np.ndarray) -> np.ndarray:
        """An upper bound of :meth:`support_added` given upper bounds of ``base`` (float64)."""
        return base_upper + self.factor[rows] * (self.values[entries].astype(np.float64) / self.best[rows])

    def background_bound(self, rows: np.ndarray, weight_max: float) -> np.ndarray:
        """The most the background of blend rows ``rows`` adds at a track of weight at most ``weight_max``."""
        return (self.coef[rows].astype(np.float64) * weight_max / self.best[rows]) * self.factor[rows]
