"""Item-item co-occurrence: tracks that share playlists with the seeds.

With ``c_ij`` the number of training playlists holding both tracks and ``c_i`` the number holding ``i``,
the similarity of a candidate ``j`` to a seed ``i`` is::

    sim(i, j) = (c_ij / (c_i ** alpha * c_j ** (1 - alpha))) ** power

``alpha = 0.5`` is cosine; lower ``alpha`` damps popular candidates harder, ``alpha = 1`` is P(j | i).
Only each seed's ``neighbors`` most similar tracks are kept, so the similarity matrix has at most
``n_tracks * neighbors`` entries however large the data. It is built from the sparse product ``XᵀX`` one
block of seed tracks at a time, each block sized so its product holds about ``block_nnz`` entries.

A playlist scores ``Σ_seeds sim(seed, ·)`` (one sparse product for the whole batch), scaled to a maximum
of 1, plus a ``title_weight / n_seeds ** title_decay`` blend of the title model (titles help most when seeds
are few) and a small ``popularity_weight`` blend, each also scaled to 1, that break ties and fill rows
whose seeds have few neighbours.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from segue.config import setting
from segue.data.store import Store
from segue.models._common import (blend_titles, csr_arrays, csr_from, csr_values_at, load_npz, save_npz, scale_rows,
                                  seed_rows, sparse_top_n, titled_rows, track_popularity)
from segue.models.base import Candidates, FallbackConfig, Recommender, register
from segue.progress import progress_task

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CooccurConfig(FallbackConfig):
    # weight of the seed's count in the normalisation (0.5 = cosine, 1 = P(j | i))
    alpha: float = setting(0.75, ge=0.0, le=1.0)
    power: float = setting(1.0, gt=0.0)  # exponent on similarities; > 1 favours the strongest neighbours
    # similar tracks kept per track (bounds memory: n_tracks * neighbors entries)
    neighbors: int = setting(200, ge=1)
    min_cooccurrence: int = setting(1, ge=1)  # pairs seen together fewer times are dropped
    title_weight: float = setting(1.0, ge=0.0)  # blend of the title model's scores for one seed (0 disables) ...
    title_decay: float = setting(1.0, ge=0.0)  # ... divided by n_seeds ** title_decay: titles matter less as seeds grow
    popularity_weight: float = setting(0.001, ge=0.0)  # blend of popularity, mostly a tie-breaker
    block_nnz: int = setting(20_000_000, ge=1)  # size of each XᵀX block; bounds the memory used while training


# `segue tune`'s search space (format: segue.evaluate.tune). neighbors stops at 400: at MPD scale (2.3M
# tracks) that is ~1e9 similarity entries, about what one machine holds; block_nnz only bounds memory.
SEARCH_SPACE = {
    "alpha": {"low": 0.0, "high": 1.0},
    "power": {"low": 0.5, "high": 3.0},
    "neighbors": {"low": 25, "high": 400, "log": True},
    "min_cooccurrence": {"low": 1, "high": 3},
    "title_weight": {"low": 0.0, "high": 3.0},
    "title_decay": {"low": 0.0, "high": 3.0},
    "popularity_weight": {"low": 1e-4, "high": 0.05, "log": True},
}


def item_blocks(estimate: np.ndarray, budget: int) -> np.ndarray:
    """Boundaries splitting items into consecutive blocks whose summed ``estimate`` is about ``budget``."""
    cumulative = np.cumsum(estimate, dtype=np.float64)
    marks = np.arange(budget, cumulative[-1] if len(cumulative) else 0, budget, dtype=np.float64)
    cuts = np.searchsorted(cumulative, marks, side="left") + 1
    return np.unique(np.concatenate([[0], cuts, [len(estimate)]])).astype(np.int64)


def cooccurrence_neighbors(x: sp.csr_matrix, cfg: CooccurConfig, progress: bool = False) -> sp.csr_matrix:
    """(n_tracks, n_tracks) CSR: row i holds sim(i, ·) for i's top ``cfg.neighbors`` tracks."""
    n_tracks = x.shape[1]
    xt = x.T.tocsr()  # (tracks, playlists)
    counts = np.diff(xt.indptr).astype(np.float64)
    # an upper bound on each row's entries in XᵀX: the summed lengths of the playlists holding the track
    estimate = xt @ np.diff(x.indptr).astype(np.float64)
    bounds = item_blocks(estimate, cfg.block_nnz)
    blocks = []
    damp_seed = np.power(np.maximum(counts, 1.0), -cfg.alpha).astype(np.float32)
    damp_candidate = np.power(np.maximum(counts, 1.0), cfg.alpha - 1.0).astype(np.float32)
    with progress_task("cooccur: XᵀX blocks", total=n_tracks, enabled=progress) as advance:
        for start, stop in zip(bounds[:-1], bounds[1:]):
            block = (xt[start:stop] @ x).tocsr()  # (b, tracks) co-occurrence counts c_ij
            rows = (seed_rows(block.indptr) + start).astype(np.int32)
            data = block.data
            drop = block.indices == rows  # the diagonal
            if cfg.min_cooccurrence > 1:
                drop |= data < cfg.min_cooccurrence
            data *= damp_seed[rows]
            data *= damp_candidate[block.indices]
            if cfg.power != 1.0:
                np.power(data, cfg.power, out=data)
            data[drop] = 0
            del rows, drop
            block.eliminate_zeros()
            blocks.append(sparse_top_n(block, cfg.neighbors))
            advance(stop - start, entries=sum(b.nnz for b in blocks))
    if not blocks:
        return sp.csr_matrix((n_tracks, n_tracks), dtype=np.float32)
    return sp.vstack(blocks, format="csr", dtype=np.float32)


@register
class Cooccur(Recommender):
    name = "cooccur"
    Config = CooccurConfig
    search_space = SEARCH_SPACE

    def _fit(self, train: Store, progress: bool) -> None:
        x = train.csr(binary=True)
        self.similarity = cooccurrence_neighbors(x, self.config, progress)
        self.popularity = track_popularity(train, "playlists", binary=x).astype(np.float32)
        self.fit_info = {"similarity_nnz": int(self.similarity.nnz)}
        log.info("cooccur: %d similarity entries for %d tracks", self.similarity.nnz, train.n_tracks)
        self._prepare()

    def _prepare(self) -> None:
        top = self.popularity.max(initial=0.0)
        self._pop = np.log1p(self.popularity) / np.log1p(top) if top > 0 else self.popularity.copy()
        self._unseen = self.popularity <= 0
        self._order = None  # background_order(), built on first use

    def _score(self, indptr: np.ndarray, indices: np.ndarray, titles) -> np.ndarray:
        b = len(indptr) - 1
        seeds = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(b, self.n_tracks))
        scores = scale_rows((seeds @ self.similarity).toarray())  # (b, n_tracks)
        scores = blend_titles(scores, indptr, titles, self.fallback, self.config.title_weight,
                              self.config.title_decay)
        if self.config.popularity_weight > 0:
            scores += self.config.popularity_weight * self._pop[None, :]
        scores[:, self._unseen] = -np.inf
        return scores

    def _candidates(self, indptr: np.ndarray, indices: np.ndarray, titles) -> Candidates | None:
        """The scores of :meth:`_score` as the sparse path needs them: the seeds' summed neighbour rows and the
        title model's sparse part are the support; popularity (and the title model's, which follows the same
        order) the background."""
        if not self._background_follows_popularity():
            return None
        b = len(indptr) - 1
        seeds = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(b, self.n_tracks))
        sims = (seeds @ self.similarity).tocsr()  # (b, n_tracks), as _score sums it
        sims.sum_duplicates()
        top = np.ones(b, dtype=np.float32)  # scale_rows' divisor: the row's largest value, 1 when none is > 0
        nonempty = np.flatnonzero(np.diff(sims.indptr))
        if len(nonempty):
            top[nonempty] = np.maximum.reduceat(sims.data, sims.indptr[nonempty])
        top[top <= 0] = 1.0
        rows_t, factor = titled_rows(indptr, titles, self.fallback, self.config.title_weight, self.config.title_decay)
        title_row = np.full(b, -1, dtype=np.int64)
        title_row[rows_t] = np.arange(len(rows_t))
        support_rows, support_cols = [seed_rows(sims.indptr)], [sims.indices]
        if len(rows_t):
            sparse = self.fallback.sparse_scores([titles[r] for r in rows_t])
            if sparse is None:
                return None
            part, title_score, title_top = sparse
            support_rows.append(rows_t[seed_rows(part.indptr)])
            support_cols.append(part.indices)
        weight = self.config.popularity_weight

        def score(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            out = csr_values_at(sims, rows, cols) / top[rows]
            t_rows = title_row[rows]
            titled = np.flatnonzero(t_rows >= 0)
            if len(titled):
                t = t_rows[titled]
                out[titled] += factor[t] * (title_score(t, cols[titled]) / title_top[t])  # as blend_titles
            if weight > 0:
                out += weight * self._pop[cols]
            out[self._unseen[cols]] = -np.inf
            return out

        order, group_end = self.background_order()
        return Candidates(np.concatenate(support_rows), np.concatenate(support_cols), order, group_end, score)

    def _background_follows_popularity(self) -> bool:
        """Whether the title model's popularity (the background of titled rows) is ordered as this model's
        (true when both were fitted on one store)."""
        if self.fallback is None or self.config.title_weight <= 0:
            return True
        key = id(self.fallback)
        if getattr(self, "_checked_fallback", None) != key:
            order, _ = self.background_order()
            title_pop = self.fallback.popularity[order]
            self._follows = bool(np.all(title_pop[1:] <= title_pop[:-1])
                                 and np.array_equal(self.fallback.popularity <= 0, self._unseen))
            self._checked_fallback = key
        return self._follows

    def _save_arrays(self, directory: Path) -> None:
        save_npz(directory / "arrays.npz", popularity=self.popularity, **csr_arrays("similarity", self.similarity))

    def _load_arrays(self, directory: Path) -> None:
        arrays = load_npz(directory / "arrays.npz")
        self.popularity = arrays["popularity"]
        self.similarity = csr_from("similarity", arrays, (self.n_tracks, self.n_tracks))
        if self.popularity.shape != (self.n_tracks,):
            raise ValueError("popularity does not match config.json")
        self._prepare()
