"""Playlist titles -> tracks: what playlists with a similar name contain, smoothed toward popularity.

Training groups playlists by normalised title (:func:`segue.data.mpd.normalize_title`) into a sparse
title x track count matrix ``M`` (each title's most common ``max_tracks_per_title`` tracks kept) and
describes each distinct title by a TF-IDF vector of character 3-grams of ``" title "`` plus its whole
words. A query title is vectorised the same way; its ``neighbors`` most similar training titles (cosine
similarity ``s``, the exact title scoring 1) get weights ``w ∝ s ** similarity_power`` summing to 1, and a
track scores::

    score = Σ_t w_t · (M[t] + shrink · pop) / (n_t + shrink)  +  popularity_weight · pop

where ``n_t`` is the number of playlists titled ``t`` and ``pop`` is the share of training playlists that
hold the track. So "country roadtrip 2017" still finds country and roadtrip playlists, rare titles lean on
popularity, and an empty or unmatched title gets the popularity ranking. Seeds are ignored: this model is
the 0-seed answer (and the fallback every other model uses for playlists without seeds).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from segue.config import setting
from segue.data.mpd import normalize_title
from segue.data.store import Store, csr_keep
from segue.models._common import (ScaledBlend, csr_arrays, csr_from, csr_values_at, load_npz, save_npz, scale_rows,
                                  seed_rows, sparse_top_n, track_popularity)
from segue.models.base import Candidates, ModelConfig, Recommender, register
from segue.progress import progress_task

WORD_PREFIX = "\x01"  # marks whole-word features apart from character n-grams
NGRAM = 3
# Unique query titles scored per sparse similarity block (bounds the block's size).
QUERY_BLOCK = 256
# Title lists up to this long (a served request's) are normalised in Python: Arrow's setup costs more.
SMALL_TITLE_LIST = 64


def distinct_titles(names: pa.Array | pa.ChunkedArray | list) -> tuple[list[str], np.ndarray]:
    """Sorted distinct normalised titles and each name's index into them: ``(titles, (n,) int64)``.

    Dictionary-encodes the raw names first, so :func:`normalize_title` runs once per distinct raw name and no
    fixed-width string array of every name is built.
    """
    if isinstance(names, list) and len(names) <= SMALL_TITLE_LIST:
        normalised = [normalize_title(name) for name in names]
        titles = sorted(set(normalised) | {""})  # code point order = the UTF-8 byte order Arrow sorts by
        index = {title: i for i, title in enumerate(titles)}
        return titles, np.array([index[title] for title in normalised], dtype=np.int64)
    encoded = pc.dictionary_encode(pa.array(names, pa.string()) if isinstance(names, list) else names)
    encoded = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
    raw_codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    normalised = pa.array([normalize_title(name) for name in encoded.dictionary.to_pylist()] + [""], pa.string())
    titles = pc.unique(normalised)
    titles = pc.take(titles, pc.sort_indices(titles))
    to_title = pc.index_in(normalised, value_set=titles).to_numpy(zero_copy_only=False).astype(np.int64)
    return titles.to_pylist(), to_title[raw_codes]  # code -1 (a null name) takes the last entry: ""


def _used_titles(titles: list[str], inverse: np.ndarray) -> tuple[list[str], np.ndarray]:
    """:func:`distinct_titles`'s output cut to the titles ``inverse`` refers to (it always lists "")."""
    used = np.unique(inverse)
    if len(used) == len(titles):
        return titles, inverse
    return [titles[i] for i in used], np.searchsorted(used, inverse)


def _row_sums(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-row sums (float64) of a CSR's ``values`` laid out by ``indptr``."""
    return np.bincount(seed_rows(indptr), weights=values, minlength=len(indptr) - 1)


def _scaled_rows(matrix: sp.csr_matrix, factors: np.ndarray) -> sp.csr_matrix:
    """``diag(factors) @ matrix`` as float32, each product taken in float64."""
    data = (matrix.data.astype(np.float64) * np.repeat(factors, np.diff(matrix.indptr))).astype(np.float32)
    return sp.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)


def title_features(title: str, word_weight: float) -> dict[str, float]:
    """Raw term weights of one normalised title: character 3-grams of ``" title "`` and whole words."""
    if not title:
        return {}
    padded = f" {title} "
    features: dict[str, float] = {}
    for i in range(len(padded) - NGRAM + 1):
        gram = padded[i : i + NGRAM]
        features[gram] = features.get(gram, 0.0) + 1.0
    for word in title.split():
        key = WORD_PREFIX + word
        features[key] = features.get(key, 0.0) + word_weight
    return features


@dataclasses.dataclass(frozen=True)
class TitleConfig(ModelConfig):
    neighbors: int = setting(50, ge=1)  # similar training titles blended per query title
    similarity_power: float = setting(3.0, gt=0.0)  # sharpens the weights toward the closest titles
    min_similarity: float = setting(0.1, ge=0.0, le=1.0)  # neighbours less similar than this are ignored
    # pseudo-playlists of popularity mixed into each title's track distribution
    shrink: float = setting(10.0, ge=0.0)
    popularity_weight: float = setting(0.01, ge=0.0)  # extra popularity blended into every title's scores
    word_weight: float = setting(2.0, ge=0.0)  # weight of a whole-word match relative to one character 3-gram
    max_tracks_per_title: int = setting(5000, ge=1)  # keeps the title x track matrix bounded on large data


# `segue tune`'s search space (format: segue.evaluate.tune); max_tracks_per_title only bounds memory
SEARCH_SPACE = {
    "neighbors": {"low": 5, "high": 200, "log": True},
    "similarity_power": {"low": 0.5, "high": 6.0},
    "min_similarity": {"low": 0.0, "high": 0.5},
    "shrink": {"low": 0.5, "high": 200.0, "log": True},
    "popularity_weight": {"low": 1e-4, "high": 0.1, "log": True},
    "word_weight": {"low": 0.5, "high": 5.0},
}


@register
class TitleModel(Recommender):
    name = "title"
    Config = TitleConfig
    search_space = SEARCH_SPACE
    uses_title_fallback = False

    # ---- training ----------------------------------------------------------------------------
    def _fit(self, train: Store, progress: bool) -> None:
        cfg = self.config
        titles, playlist_title = distinct_titles(train.playlist_meta.column("name"))
        n_titles = len(titles)
        with progress_task("title: tracks per title", total=2, enabled=progress) as advance:
            # (titles, playlists) one-hot @ (playlists, tracks) binary -> (titles, tracks) counts
            onehot = sp.csr_matrix(
                (np.ones(train.n_playlists, np.float32), playlist_title, np.arange(train.n_playlists + 1)),
                shape=(train.n_playlists, n_titles),
            ).T.tocsr()
            binary = train.csr(binary=True)
            counts = (onehot @ binary).tocsr()
            counts = sparse_top_n(counts, cfg.max_tracks_per_title)
            advance()
            self.title_playlists = np.bincount(playlist_title, minlength=n_titles).astype(np.float32)
            playlists = track_popularity(train, "playlists", binary=binary)
            self.popularity = playlists.astype(np.float32) / max(1, train.n_playlists)
            self.title_tracks = counts.astype(np.float32)
            self._fit_vectoriser(titles)
            advance()
        self.fit_info = {"n_titles": int(n_titles), "n_features": int(len(self.vocab)),
                         "title_track_nnz": int(self.title_tracks.nnz)}
        self._prepare()

    def _fit_vectoriser(self, titles: list[str]) -> None:
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for row, title in enumerate(titles):
            for key, value in title_features(title, self.config.word_weight).items():
                rows.append(row)
                cols.append(vocab.setdefault(key, len(vocab)))
                vals.append(value)
        raw = sp.csr_matrix((np.asarray(vals, np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
                            shape=(len(titles), len(vocab)))
        df = np.diff(raw.tocsc().indptr)
        self.idf = (np.log((1.0 + len(titles)) / (1.0 + df)) + 1.0).astype(np.float32)
        self.vocab = vocab
        self.title_vectors = self._weigh(raw)

    def _weigh(self, raw: sp.csr_matrix) -> sp.csr_matrix:
        """Sublinear tf x idf, rows L2-normalised."""
        data = (1.0 + np.log(np.maximum(raw.data, 1e-12))) * self.idf[raw.indices]
        norms = np.sqrt(_row_sums(raw.indptr, np.square(data, dtype=np.float64)))
        norms[norms == 0] = 1.0
        return _scaled_rows(sp.csr_matrix((data, raw.indices, raw.indptr), shape=raw.shape), 1.0 / norms)

    def _prepare(self) -> None:
        """Derived arrays used at query time (not saved)."""
        n = self.title_playlists + self.config.shrink
        self._title_dist = sp.csr_matrix(sp.diags(1.0 / n) @ self.title_tracks, dtype=np.float32)
        self._title_shrink = (self.config.shrink / n).astype(np.float32)
        self._vectors_t = self.title_vectors.T.tocsr()
        self._pop = self.popularity.copy()
        self._unseen = self.popularity <= 0
        self._order = None  # background_order(), built on first use

    # ---- inference ---------------------------------------------------------------------------
    def title_weights(self, titles: list[str]) -> sp.csr_matrix:
        """(len(titles), n_titles) neighbour weights of normalised query titles; each row sums to 1 or 0.

        The steps work on the CSR arrays directly: serving scores one title per request, where a scipy matrix
        operation per step (constructor, format checks, ``diags`` product) cost more than its arithmetic."""
        counts, cols, vals = np.zeros(len(titles) + 1, np.int64), [], []
        for row, title in enumerate(titles):
            for key, value in title_features(title, self.config.word_weight).items():
                col = self.vocab.get(key)
                if col is not None:  # a title's features are distinct keys: no repeated column in a row
                    counts[row + 1] += 1
                    cols.append(col)
                    vals.append(value)
        raw = sp.csr_matrix((np.asarray(vals, np.float32), np.asarray(cols, np.int64), np.cumsum(counts)),
                            shape=(len(titles), len(self.vocab)))
        sims = self._weigh(raw) @ self._vectors_t  # (queries, n_titles) cosine
        keep = (sims.data >= self.config.min_similarity) & (sims.data > 0)
        kept, columns = csr_keep(sims.indptr, sims.indices, keep)
        sims = sparse_top_n(sp.csr_matrix((sims.data[keep], columns, kept), shape=sims.shape), self.config.neighbors)
        sims.data = np.power(sims.data, self.config.similarity_power)
        totals = _row_sums(sims.indptr, sims.data)
        totals[totals == 0] = 1.0
        return _scaled_rows(sims, 1.0 / totals)

    def _title_parts(self, titles: list[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        """Scores of normalised query titles as ``part + coef * pop`` (-inf where unseen): the sparse part
        ``(u, n_tracks)`` float32 and the popularity coefficient ``(u,)`` float32."""
        weights = self.title_weights(titles)  # (u, n_titles)
        matched = _row_sums(weights.indptr, weights.data)
        pop_coef = (1.0 - matched) + weights @ self._title_shrink + self.config.popularity_weight
        return weights @ self._title_dist, pop_coef.astype(np.float32)

    def _score(self, indptr: np.ndarray, indices: np.ndarray, titles) -> np.ndarray:
        b = len(indptr) - 1
        unique, inverse = distinct_titles(list(titles) if titles is not None else [None] * b)
        scores = np.empty((b, len(self.popularity)), dtype=np.float32)
        for start in range(0, len(unique), QUERY_BLOCK):
            block = slice(start, min(len(unique), start + QUERY_BLOCK))
            part, coef = self._title_parts(unique[block])
            dense = part.toarray()  # (u, n_tracks)
            dense += coef[:, None] * self._pop[None, :]
            dense[:, self._unseen] = -np.inf
            rows = np.flatnonzero((inverse >= block.start) & (inverse < block.stop))
            scores[rows] = dense[inverse[rows] - block.start]
        return scores

    # ---- the sparse path (serving) ---------------------------------------------------------------
    def sparse_scores(self, titles) -> tuple[sp.csr_matrix, Callable, np.ndarray] | None:
        """Per title (None or empty for none): the sparse part of its dense scores, ``(len(titles), n_tracks)``
        CSR; ``score(rows, tracks)``, the dense scores at those entries (``rows`` index ``titles``); and each
        dense row's largest finite score (what ``scale_rows`` divides it by, 1 when none is > 0). None when a
        popularity coefficient is negative (the background would not follow popularity: use the dense path)."""
        parts = self._sparse_parts(titles)
        if parts is None:
            return None
        part, coef, _, best = parts
        return part, functools.partial(self._dense_at, part, coef), best

    def scaled_blend(self, titles: list[str], factor: np.ndarray) -> ScaledBlend | None:
        """What :meth:`add_scaled_scores` adds for ``titles`` with ``factor``, term by term (for an exact top-k
        that never builds the dense rows); None when a popularity coefficient is negative."""
        parts = self._sparse_parts(titles, canonical=False)  # no lookups into it: the order of the columns is moot
        if parts is None:
            return None
        part, coef, values, best = parts
        return ScaledBlend(part, values, coef, best, np.asarray(factor, dtype=np.float32), self._pop, self._unseen)

    def _dense_at(self, part: sp.csr_matrix, coef: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The dense scores ``part + coef * pop`` (-inf where unseen) at ``(rows, cols)``, as _score computes them."""
        out = csr_values_at(part, rows, cols) + coef[rows] * self._pop[cols]
        out[self._unseen[cols]] = -np.inf
        return out

    def _sparse_parts(self, titles, canonical: bool = True
                      ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray] | None:
        """Per title: the sparse part and popularity coefficient of its dense scores, the dense scores at the
        part's entries, and the dense row's largest finite score (see :meth:`sparse_scores`); None when a
        coefficient is negative. The part's columns are distinct in each row, and sorted with ``canonical``."""
        unique, inverse = _used_titles(*distinct_titles(list(titles)))
        part, coef = self._title_parts(unique)  # a scipy product: no repeated columns in a row
        if np.any(coef < 0):
            return None
        if canonical:
            part.sum_duplicates()
        if not np.array_equal(inverse, np.arange(len(unique))):  # False too when the lengths differ
            part, coef = part[inverse], coef[inverse]  # whole rows: as they were
        values = self._dense_at_entries(part, coef)
        # a row's best score: on its support, or the background at the most popular track; when that track is
        # in the support its score there is at least the background, so the max of the two is exact
        best = np.full(len(inverse), -np.inf, dtype=np.float32)
        nonempty = np.flatnonzero(np.diff(part.indptr))
        if len(nonempty):
            best[nonempty] = np.maximum.reduceat(values, part.indptr[nonempty])
        top = int(self.background_order()[0][0])
        if not self._unseen[top]:
            best = np.maximum(best, coef * self._pop[top])
        best[~np.isfinite(best) | (best <= 0)] = 1.0
        return part, coef, values, best

    def _dense_at_entries(self, part: sp.csr_matrix, coef: np.ndarray) -> np.ndarray:
        """:meth:`_dense_at` at every stored entry of ``part`` (no lookup needed)."""
        values = part.data + coef[seed_rows(part.indptr)] * self._pop[part.indices]
        values[self._unseen[part.indices]] = -np.inf
        return values

    def add_scaled_scores(self, scores: np.ndarray, rows: np.ndarray, titles: list[str], factor: np.ndarray) -> None:
        """``scores[rows[i]] += factor[i] * title i's dense scores scaled to a best of 1``, in place, bit for bit
        as adding ``factor[:, None] * scale_rows(self._score(...))`` would, without building the dense title
        rows: the popularity background is added in one pass over the rows, then the entries of the sparse part
        are set from the values they held before it. ``rows`` ascending and distinct."""
        blend = self.scaled_blend(titles, factor)
        if blend is None:
            empty = np.zeros(len(rows) + 1, np.int64), np.zeros(0, np.int32)
            scores[rows] += factor[:, None] * scale_rows(self._score(*empty, titles))
            return
        blend.add_to(scores, rows)

    def _candidates(self, indptr: np.ndarray, indices: np.ndarray, titles) -> Candidates | None:
        sparse = self.sparse_scores(titles if titles is not None else [None] * (len(indptr) - 1))
        if sparse is None:
            return None
        part, score, _ = sparse
        order, group_end = self.background_order()
        return Candidates(seed_rows(part.indptr), part.indices, order, group_end, score)

    # ---- persistence -------------------------------------------------------------------------
    def _save_arrays(self, directory: Path) -> None:
        keys = sorted(self.vocab, key=self.vocab.get)
        save_npz(
            directory / "arrays.npz",
            title_playlists=self.title_playlists,
            popularity=self.popularity,
            idf=self.idf,
            vocab=np.frombuffer("\n".join(keys).encode("utf-8"), dtype=np.uint8),
            **csr_arrays("title_tracks", self.title_tracks),
            **csr_arrays("title_vectors", self.title_vectors),
        )

    def _load_arrays(self, directory: Path) -> None:
        arrays = load_npz(directory / "arrays.npz")
        self.title_playlists = arrays["title_playlists"]
        self.popularity = arrays["popularity"]
        self.idf = arrays["idf"]
        keys = arrays["vocab"].tobytes().decode("utf-8").split("\n") if len(arrays["vocab"]) else []
        self.vocab = {key: i for i, key in enumerate(keys)}
        self.title_tracks = csr_from("title_tracks", arrays, (len(self.title_playlists), self.n_tracks))
        self.title_vectors = csr_from("title_vectors", arrays, (len(self.title_playlists), len(self.vocab)))
        if self.popularity.shape != (self.n_tracks,) or len(self.idf) != len(self.vocab):
            raise ValueError("array shapes do not match config.json")
        self._prepare()

