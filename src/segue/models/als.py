"""Weighted matrix factorisation (implicit-feedback ALS, Hu, Koren & Volinsky 2008) via ``implicit``.

Training factorises the playlists x tracks matrix with confidences ``C = alpha * w``, where ``w`` is 1 per
entry (``weighting="linear"``) or its BM25 weight (``weighting="bm25"``: damps very popular tracks and
long playlists). Only the track factors ``Y`` are kept. A query playlist with seeds ``S`` is folded in
with the exact ALS user solve, batched in numpy::

    x = (YᵀY + λI + Σ_{i∈S} (c_i - 1) y_i y_iᵀ)⁻¹ Σ_{i∈S} c_i y_i        scores = x Yᵀ

which is what ``implicit`` itself computes for a user, so a training playlist folds in to (nearly) its
trained factors. Tracks that never occur in training score -inf. A ``title_weight / n_seeds ** title_decay``
blend of the title model helps titled playlists with few seeds. On a large catalogue the top k is found
exactly from the songs with the longest factors (``segue.models._dot``), not from every song's score.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from segue.config import setting
from segue.data.store import Store, csr_slice
from segue.errors import InputError
from segue.io import atomic_path, read_json, write_json
from segue.models._common import (blend_titles, load_npz, save_npz, scale_rows, seed_rows, sparse_top_n, titled_rows,
                                  track_popularity)
from segue.models._dot import NormOrder, RowBlend, pruned_top_k
from segue.models.base import FallbackConfig, Recommender, as_seed_csr, register, top_k
from segue.progress import progress_task

log = logging.getLogger(__name__)

WEIGHTINGS = ("linear", "bm25")
# Seeds x factors x factors floats per fold-in chunk.
FOLD_IN_FLOATS = 1 << 24
# Rows of the item factors converted to float64 at a time for YᵀY.
PREPARE_BLOCK_ROWS = 1 << 16
# The approximate index for serving (hnswlib HNSW graph, its own file format) and its build/search settings:
# recall@500 0.99 at ef 600 on 280k real factors (benchmarks/serve.py measures it at 2.26M)
ANN_FILE, ANN_INFO_FILE = "ann-hnsw.bin", "ann-hnsw.json"
ANN_VERSION = 1
ANN_LINKS, ANN_EF_CONSTRUCTION, ANN_EF = 16, 100, 600


@dataclasses.dataclass(frozen=True)
class ALSConfig(FallbackConfig):
    factors: int = setting(128, ge=1)
    regularization: float = setting(0.05, ge=0.0)
    # confidence scale: c = alpha * weight (bm25 weights are ~2-13 on MPD-sized data)
    alpha: float = setting(2.0, gt=0.0)
    weighting: str = setting("bm25", choices=WEIGHTINGS)
    bm25_k1: float = setting(100.0, ge=0.0)
    bm25_b: float = setting(0.8, ge=0.0, le=1.0)
    iterations: int = setting(15, ge=1)
    title_weight: float = setting(1.0, ge=0.0)  # blend of the title model's scores for one seed (0 disables) ...
    title_decay: float = setting(1.0, ge=0.0)  # ... divided by n_seeds ** title_decay
    seed: int = setting(0, ge=0, lt=2**32)  # implicit's random_state
    threads: int = setting(0, ge=0, le=1024)  # 0: implicit's default (all cores)


# `segue tune`'s search space (format: segue.evaluate.tune). factors stop at 256 (2.3M MPD tracks x 256
# floats = 2.3 GB); bm25_k1/bm25_b matter only with weighting=bm25 (TPE learns to ignore them otherwise).
SEARCH_SPACE = {
    "factors": {"low": 32, "high": 256, "log": True},
    "regularization": {"low": 1e-3, "high": 1.0, "log": True},
    "alpha": {"low": 0.3, "high": 30.0, "log": True},
    "weighting": {"choices": list(WEIGHTINGS)},
    "bm25_k1": {"low": 1.0, "high": 500.0, "log": True},
    "bm25_b": {"low": 0.3, "high": 1.0},
    "iterations": {"low": 5, "high": 25},
    "title_weight": {"low": 0.0, "high": 3.0},
    "title_decay": {"low": 0.0, "high": 3.0},
}


@register
class ALS(Recommender):
    name = "als"
    Config = ALSConfig
    search_space = SEARCH_SPACE

    # ---- training ----------------------------------------------------------------------------
    def _fit(self, train: Store, progress: bool) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        x = train.csr(binary=True)  # (playlists, tracks)
        self.n_train_playlists = train.n_playlists
        self.item_playlists = track_popularity(train, "playlists", binary=x).astype(np.float32)
        self.mean_length = float(np.diff(x.indptr).mean()) if x.shape[0] else 1.0
        confidence = x  # reused in place: the binary values are not needed again (one nnz-sized copy less)
        confidence.data = self._weights(x.indptr, x.indices)
        started = time.perf_counter()
        # implicit runs its own thread pool; a threaded BLAS underneath it only slows it down
        with threadpool_limits(1, "blas"), \
                progress_task("als: iterations", total=cfg.iterations, enabled=progress) as advance:
            model = AlternatingLeastSquares(
                factors=cfg.factors, regularization=cfg.regularization, alpha=cfg.alpha, iterations=cfg.iterations,
                random_state=cfg.seed, num_threads=cfg.threads, calculate_training_loss=progress,
            )
            model.fit(confidence, show_progress=False,
                      callback=lambda it, seconds, loss=None: advance(**({"loss": float(loss)} if loss else {})))
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)  # (tracks, factors)
        self.fit_info = {"seconds": round(time.perf_counter() - started, 2)}
        self._prepare()

    def _weights(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """(nnz,) weight w per entry of binary rows given as CSR arrays (confidence is alpha * w)."""
        if self.config.weighting == "linear":
            return np.ones(len(indices), dtype=np.float32)
        # BM25 as implicit.nearest_neighbours.bm25_weight computes it, with the training statistics
        idf = np.log(max(1, self.n_train_playlists)) - np.log1p(self.item_playlists[indices])  # the entries' only
        lengths = np.diff(indptr).astype(np.float64)
        norm = (1.0 - self.config.bm25_b) + self.config.bm25_b * lengths / max(self.mean_length, 1e-9)
        k1 = self.config.bm25_k1
        w = (k1 + 1.0) / (k1 * np.repeat(norm, lengths.astype(np.int64)) + 1.0) * idf
        return np.maximum(w, 1e-3).astype(np.float32)  # very common tracks keep a little positive weight

    def _prepare(self) -> None:
        # YᵀY accumulated in float64 a block of rows at a time: no float64 copy of all of Y (2.3 GB at the MPD's
        # 2.26M songs x 128 factors)
        y, f = self.item_factors, self.item_factors.shape[1]
        yty = np.zeros((f, f))
        for start in range(0, len(y), PREPARE_BLOCK_ROWS):
            block = y[start : start + PREPARE_BLOCK_ROWS].astype(np.float64)
            yty += block.T @ block
        self._yty = yty + self.config.regularization * np.eye(f)
        self._unseen = np.flatnonzero(self.item_playlists <= 0)  # ids: cheaper to mask than a boolean row
        self._unseen_mask = self.item_playlists <= 0
        self._norm = None  # the pruned top-k's song order, built on first use
        self._blend_past = None  # (order, weight, its largest values past each level) for the title blend

    # ---- inference ---------------------------------------------------------------------------
    def fold_in(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """(b, factors) playlist factors from seeds, by the exact ALS least-squares solve."""
        b, f = len(indptr) - 1, self.item_factors.shape[1]
        out = np.zeros((b, f), dtype=np.float32)
        lengths = np.diff(indptr)
        if b == 0 or lengths.max() == 0:
            return out
        conf = self.config.alpha * self._weights(indptr, indices).astype(np.float64)  # (nnz,)
        chunk = max(1, min(FOLD_IN_FLOATS // (int(lengths.max()) * f), FOLD_IN_FLOATS // (f * f)))
        for start in range(0, b, chunk):
            stop = min(b, start + chunk)
            sub_ptr, sub_idx = csr_slice(indptr, indices, start, stop)
            out[start:stop] = self._solve_chunk(sub_ptr, sub_idx, csr_slice(indptr, conf, start, stop)[1])
        return out

    def _solve_chunk(self, indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray) -> np.ndarray:
        lengths = np.diff(indptr)
        c, f, width = len(lengths), self.item_factors.shape[1], max(1, int(lengths.max()))
        rows = seed_rows(indptr)
        cols = np.arange(len(indices)) - indptr[:-1][rows]
        seed_factors = np.zeros((c, width, f))  # (c, L, f), zero-padded
        seed_factors[rows, cols] = self.item_factors[indices]
        weight = np.zeros((c, width))  # (c, L) confidences
        weight[rows, cols] = conf
        a = self._yty[None] + np.matmul(seed_factors.transpose(0, 2, 1) * (weight - (weight > 0))[:, None, :],
                                        seed_factors)  # (c, f, f)
        rhs = np.matmul(seed_factors.transpose(0, 2, 1), weight[..., None])  # (c, f, 1)
        return np.linalg.solve(a, rhs)[..., 0]

    def _pruned_top_k(self, indptr, indices, titles, k: int, exclude_seeds: bool):
        """:func:`~segue.models._dot.pruned_top_k` of the folded-in playlists, scaled and title-blended as
        :meth:`_score`; None for small catalogues, or when the title blend cannot be bounded."""
        norm_order = self._norm_order()
        if norm_order is None:
            return None
        blend = None
        rows, factor = titled_rows(indptr, titles, self.fallback, self.config.title_weight, self.config.title_decay)
        if len(rows):
            terms = getattr(self.fallback, "scaled_blend", None)
            terms = terms([titles[r] for r in rows], factor) if terms is not None else None
            if terms is None:
                return None
            cached = self._blend_past  # one pass over the catalogue, kept while the order and weight stay
            if cached is None or cached[0] is not norm_order or cached[1] is not terms.weight:
                self._blend_past = cached = (norm_order, terms.weight, norm_order.past(terms.weight))
            blend = RowBlend(terms, rows, cached[2])
        return pruned_top_k(norm_order, self.fold_in(indptr, indices), k, indptr, indices, exclude_seeds,
                            never=self._unseen_mask, scale=True, blend=blend)

    def _norm_order(self) -> NormOrder | None:
        if self._norm is None:
            self._norm = (NormOrder.build(self.item_factors),)
        return self._norm[0]

    def _score(self, indptr: np.ndarray, indices: np.ndarray, titles) -> np.ndarray:
        factors = self.fold_in(indptr, indices)  # (b, f)
        scores = scale_rows(factors @ self.item_factors.T)  # (b, n_tracks), each row's best scores 1
        scores = blend_titles(scores, indptr, titles, self.fallback, self.config.title_weight,
                              self.config.title_decay)
        scores[:, self._unseen] = -np.inf
        return scores

    # ---- approximate serving -----------------------------------------------------------------
    def approximate_recommender(self, directory: Path, progress: bool = False):
        """``recommend`` from an HNSW index of the item factors (hnswlib), kept as ``directory/ann-hnsw.bin``
        and rebuilt when the model changed. Maximum inner product is turned into nearest neighbours by one extra
        coordinate, ``sqrt(max|y|² - |y|²)`` per track (0 for the query): the L2 order is then the score order
        (Bachrach et al. 2014); HNSW on the raw inner product finds far fewer of the true best tracks."""
        try:
            import hnswlib
        except ImportError:
            raise InputError("the approximate index needs hnswlib: pip install 'segue[ann]' (or serve with "
                             "--ann off).") from None
        directory = Path(directory)
        norms = np.linalg.norm(self.item_factors, axis=1)
        info = {"version": ANN_VERSION, "model_id": self.model_id, "n_tracks": self.n_tracks,
                "factors": self.config.factors, "links": ANN_LINKS, "ef_construction": ANN_EF_CONSTRUCTION}
        index = hnswlib.Index(space="l2", dim=self.config.factors + 1)
        current = (directory / ANN_INFO_FILE).is_file() and read_json(directory / ANN_INFO_FILE) == info
        if current and (directory / ANN_FILE).is_file():
            index.load_index(str(directory / ANN_FILE), max_elements=self.n_tracks)
        else:
            log.info("building the approximate index of %d tracks in %s", self.n_tracks, directory)
            started = time.perf_counter()
            index.init_index(max_elements=self.n_tracks, ef_construction=ANN_EF_CONSTRUCTION, M=ANN_LINKS,
                             random_seed=self.config.seed)
            top = float(norms.max(initial=0.0))
            with progress_task("als: approximate index", total=self.n_tracks, enabled=progress) as advance:
                for start in range(0, self.n_tracks, PREPARE_BLOCK_ROWS):
                    block = slice(start, min(self.n_tracks, start + PREPARE_BLOCK_ROWS))
                    lift = np.sqrt(np.maximum(top * top - norms[block] ** 2, 0.0))[:, None]
                    index.add_items(np.hstack([self.item_factors[block], lift]).astype(np.float32),
                                    np.arange(block.start, block.stop))
                    advance(block.stop - block.start)
            with atomic_path(directory / ANN_FILE) as tmp:
                index.save_index(str(tmp))
            with atomic_path(directory / ANN_INFO_FILE) as tmp:
                write_json(tmp, info)
            log.info("approximate index built in %.1f s", time.perf_counter() - started)
        return functools.partial(self._recommend_approximate, index)

    def _recommend_approximate(self, index, seeds, k: int = 500, titles: list[str | None] | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
        """``recommend`` with each playlist's candidates from the index (its ``k + seeds`` nearest tracks), the
        title model's best ``k + seeds`` and the most popular tracks, scored exactly as :meth:`_score` scores them
        except that the scale is the best candidate's score, not the best of every track. Playlists without
        seeds take the exact path (the title model)."""
        indptr, indices = as_seed_csr(seeds, self.n_tracks)
        n, lengths = len(indptr) - 1, np.diff(indptr)
        ids = np.full((n, k), -1, dtype=np.int32)
        out = np.full((n, k), -np.inf, dtype=np.float32)
        rows = np.flatnonzero(lengths == 0)
        if len(rows):
            ids[rows], out[rows] = self.recommend([np.zeros(0, np.int32)] * len(rows), k,
                                                  [titles[r] for r in rows] if titles is not None else None)
        rows = np.flatnonzero(lengths > 0)
        if len(rows) == 0:
            return ids, out
        sub_ptr = np.concatenate([[0], np.cumsum(lengths[rows])])
        sub_titles = [titles[r] for r in rows] if titles is not None else None
        b, f = len(rows), self.config.factors
        x = self.fold_in(sub_ptr, indices)  # (b, f)
        wanted = min(self.n_tracks, k + int(lengths.max()))
        index.set_ef(max(ANN_EF, wanted))
        found, _ = index.knn_query(np.hstack([x, np.zeros((b, 1), np.float32)]), k=wanted)
        cand_rows, cand_cols = [np.repeat(np.arange(b), wanted)], [found.ravel().astype(np.int64)]
        t_rows, factor = titled_rows(sub_ptr, sub_titles, self.fallback, self.config.title_weight,
                                     self.config.title_decay)
        title = self.fallback.sparse_scores([sub_titles[r] for r in t_rows]) if len(t_rows) else None
        if title is not None:
            part, title_score, title_best = title
            part = part.copy()
            part.data = title_score(seed_rows(part.indptr), part.indices)
            part = sparse_top_n(part, wanted).tocoo()
            head = self.fallback.background_order()[0][:wanted]
            cand_rows += [t_rows[part.row], np.repeat(t_rows, len(head))]
            cand_cols += [part.col.astype(np.int64), np.tile(head, len(t_rows)).astype(np.int64)]
        keys = np.unique(np.concatenate(cand_rows) * self.n_tracks + np.concatenate(cand_cols))
        r, c = keys // self.n_tracks, keys % self.n_tracks
        scores = np.einsum("ij,ij->i", x[r], self.item_factors[c])
        starts = np.searchsorted(r, np.arange(b))  # every row has candidates; keys are sorted by row
        top = np.maximum(np.maximum.reduceat(scores, starts), 0)
        top[top <= 0] = 1.0
        scores /= top[r]
        if len(t_rows):
            t_of = np.full(b, -1)
            t_of[t_rows] = np.arange(len(t_rows))
            at = np.flatnonzero(t_of[r] >= 0)
            t = t_of[r[at]]
            if title is not None:
                scores[at] += factor[t] * (title_score(t, c[at]) / title_best[t])
            else:  # the title model's dense rows (its popularity coefficient is negative: no sparse form)
                empty = np.zeros(len(t_rows) + 1, np.int64), np.zeros(0, np.int32)
                dense = scale_rows(self.fallback._score(*empty, [sub_titles[i] for i in t_rows]))
                scores[at] += factor[t] * dense[t, c[at]]
        scores[self.item_playlists[c] <= 0] = -np.inf
        seed_keys = seed_rows(sub_ptr) * self.n_tracks + indices.astype(np.int64)
        scores[np.isin(keys, seed_keys)] = -np.inf
        count = np.bincount(r, minlength=b)
        pos = np.arange(len(r)) - starts[r]
        block = np.full((b, int(count.max())), -np.inf, dtype=np.float32)
        block_ids = np.full(block.shape, -1, dtype=np.int32)
        block[r, pos], block_ids[r, pos] = scores, c
        best, best_scores = top_k(block, k)
        ids[rows] = np.where(best >= 0, np.take_along_axis(block_ids, np.maximum(best, 0), axis=1), -1)
        out[rows] = best_scores
        return ids, out

    # ---- persistence -------------------------------------------------------------------------
    def _save_arrays(self, directory: Path) -> None:
        save_npz(directory / "arrays.npz", item_factors=self.item_factors, item_playlists=self.item_playlists,
                 stats=np.array([self.mean_length, self.n_train_playlists], dtype=np.float64))

    def _load_arrays(self, directory: Path) -> None:
        arrays = load_npz(directory / "arrays.npz")
        # read into the process's own memory, not left mapped: a product over every song's factors (the dense
        # row) ran 1.5x slower from the mapped file (4 KB pages; anonymous memory gets huge pages)
        self.item_factors = np.array(arrays["item_factors"])
        self.item_playlists = arrays["item_playlists"]
        self.mean_length, n = (float(v) for v in arrays["stats"])
        self.n_train_playlists = int(n)
        if self.item_factors.shape != (self.n_tracks, self.config.factors):
            raise ValueError(f"item_factors has shape {self.item_factors.shape}, expected "
                             f"({self.n_tracks}, {self.config.factors})")
        self._prepare()
