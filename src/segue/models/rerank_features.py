"""The two-stage ranker's data: challenge-like ranker playlists, candidates, and (playlist, candidate) features.

* :func:`make_ranker_split` holds out playlists of a store the way the challenge set was built (the ten
  categories, their seed counts, first-k or random-k seeds, titles kept or removed), for the ranker to learn on.
* :func:`candidate_block` asks every candidate model for its dense scores, takes the union of each model's top
  ``n`` tracks per playlist (and of the query expansion's and the playlist-neighbour kNN's top songs, when
  set), and computes one feature row per (playlist, candidate) pair, vectorised over all pairs of a batch (a
  feature of a pair depends only on its own playlist, never on the batch).
* :class:`FeatureContext` holds the per-track facts the features read (popularity, artist, album, duration),
  taken from the store the candidate models were fitted on, so a ranker playlist's hidden songs never reach a
  feature.

Features (names in :func:`feature_names`): each model's score and rank (rank missing, NaN, when the model did
not propose the track: LightGBM treats NaN as "missing", not as 0) and how many models proposed it; track,
album and artist popularity (log share of playlists); how many seeds share the candidate's artist or album
(count and fraction); co-occurrence similarity of the candidate with the seeds (max, mean, sum; and the max
over the last ``RECENT_SEEDS`` seeds and with the last seed alone, since a continuation resembles the
playlist's end) and with the first model's top ``EXPANSION_SEEDS`` songs as if they were seeds (max, sum and
the top song's: query expansion; with ``expansion_candidates`` the songs with the highest expansion sum join
the candidates too); whether the candidate shares the last seed's artist / album; ALS dot products with the mean
seed factor and the last seed's factor; playlist facts (seed count, titled, distinct artists and albums per seed,
mean seed popularity); |log| ratio of the candidate's duration to the seeds' mean duration; playlist-neighbour
evidence (:func:`neighbour_evidence`: the summed similarity and the share of the playlist's most similar training
playlists that hold the candidate) and, when the kNN proposes candidates too (``knn_candidates``), its rank; and
whether the seeds are the playlist's first tracks or a random sample of its positions (``first_seeds``: the
challenge's categories 8 and 10; the last-seed and follow features mean more when the seeds end where the hidden
songs begin).
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np
import pyarrow.compute as pc
import scipy.sparse as sp

from segue.data.split import FILL_ORDER, titled_rows
from segue.data.store import Store, csr_keep
from segue.models._common import load_npz, save_npz
from segue.models.base import top_k

RECENT_SEEDS = 5
FOLLOW_WINDOW = 3
# similar training playlists the kNN features read: user-based kNN with ~100 neighbours was a strong signal on
# the real MPD for several top-10 challenge teams; 100 and 300 measured alike here (README two-stage section)
NEIGHBOURS = 100
# query expansion (pseudo-relevance feedback): the first candidate model's top songs act as extra seeds for the
# co-occurrence features, so that a playlist with a title only or one seed gets co-occurrence evidence too;
# 10, 30 and 50 songs compared on the 30,000-playlist split (ranker only, cached features): 30 and 50 alike, a
# little above 10 (README two-stage section)
EXPANSION_SEEDS = 30
CONTEXT_FILE = "context.npz"
SPARSE_FIELDS = ("follows", "playlists")


# ---- the ranker split --------------------------------------------------------------------------------
@dataclasses.dataclass
class RankerSplit:
    """Challenge-like playlists held out of a store: seeds and hidden tracks as CSR over store ids."""

    rows: np.ndarray  # (n,) store rows
    categories: np.ndarray  # (n,) challenge category 1..10
    titles: list[str | None]  # None in untitled categories
    seed_indptr: np.ndarray  # (n + 1,) int64
    seed_indices: np.ndarray  # int32, playlist order
    hidden_indptr: np.ndarray  # (n + 1,) int64
    hidden_indices: np.ndarray  # int32, distinct per playlist, never a seed

    def __len__(self) -> int:
        return len(self.rows)

    def first_seeds(self) -> np.ndarray:
        """(n,) bool: whether a playlist's seeds are its first tracks (its category is not a random-k one)."""
        return ~_category_flags(self.categories, "random")

    def subset(self, keep: np.ndarray) -> "RankerSplit":
        """The playlists at positions ``keep`` (sorted), as a RankerSplit of their own."""
        seed_ptr, seed_idx = _csr_rows(self.seed_indptr, self.seed_indices, keep)
        hid_ptr, hid_idx = _csr_rows(self.hidden_indptr, self.hidden_indices, keep)
        return RankerSplit(self.rows[keep], self.categories[keep], [self.titles[i] for i in keep.tolist()],
                           seed_ptr, seed_idx, hid_ptr, hid_idx)

    def seeds_known_to(self, known: np.ndarray) -> "RankerSplit":
        """The same playlists with only the seeds whose track ``known`` (bool per track id) marks: a song that
        occurs in no playlist the candidate models were fitted on is dropped from the seeds, as inference drops a
        seed the store does not know (``seeds_for_store``), so the ranker learns on seeds like those it is given.
        Hidden tracks are unchanged."""
        seed_ptr, seed_idx = csr_keep(self.seed_indptr, self.seed_indices, known[self.seed_indices])
        return dataclasses.replace(self, seed_indptr=seed_ptr, seed_indices=seed_idx)


def _csr_rows(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.diff(indptr)[rows]
    out = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    starts = np.repeat(indptr[rows] - out[:-1], lengths)
    return out, values[starts + np.arange(out[-1])]


def make_ranker_split(store: Store, n_playlists: int, min_holdouts: int, seed: int) -> RankerSplit:
    """Up to ``n_playlists`` playlists, a tenth per challenge category (fewer where too few are long enough).

    Categories are filled strictest first from one seeded permutation, as ``segue split`` does; seeds are
    the first k tracks or k random positions (kept in playlist order), titles are dropped in untitled
    categories; hidden tracks are the distinct non-seed tracks. Playlists left without hidden tracks are
    dropped.
    """
    rng = np.random.default_rng(seed)
    lengths = np.diff(store.indptr)
    titled = titled_rows(store)
    perm = rng.permutation(store.n_playlists)
    per_category = max(1, n_playlists // len(FILL_ORDER))
    used = np.zeros(store.n_playlists, dtype=bool)
    picked_rows, picked_cats, seed_masks = [], [], []
    for cat in FILL_ORDER:
        ok = (lengths[perm] >= cat.num_samples + min_holdouts) & ~used[perm]
        if cat.titled:
            ok &= titled[perm]
        rows = np.sort(perm[ok][:per_category])
        used[rows] = True
        picked_rows.append(rows)
        picked_cats.append(np.full(len(rows), cat.number, dtype=np.int64))
        seed_masks.append(_seed_mask(lengths[rows], cat.num_samples, cat.random, rng))
    rows = np.concatenate(picked_rows)
    is_seed = np.concatenate(seed_masks)
    indptr, entries = _csr_rows(store.indptr, store.indices, rows)
    entry_row = np.repeat(np.arange(len(rows)), np.diff(indptr))
    seed_indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(entry_row[is_seed], minlength=len(rows)), out=seed_indptr[1:])
    seed_indices = entries[is_seed]
    # hidden: distinct (row, track) among non-seeds, minus the row's seeds
    n = np.int64(store.n_tracks)
    hidden_keys = np.unique(entry_row[~is_seed] * n + entries[~is_seed])
    hidden_keys = hidden_keys[~np.isin(hidden_keys, entry_row[is_seed] * n + seed_indices)]
    hidden_rows = hidden_keys // n
    hidden_indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(hidden_rows, minlength=len(rows)), out=hidden_indptr[1:])
    categories = np.concatenate(picked_cats)
    titles = [name if has else None for name, has in
              zip((store.names[r] for r in rows.tolist()), _category_flags(categories, "titled"))]
    split = RankerSplit(rows, categories, titles, seed_indptr, seed_indices, hidden_indptr,
                        (hidden_keys % n).astype(np.int32))
    return split.subset(np.flatnonzero(np.diff(hidden_indptr) > 0))


def _category_flags(categories: np.ndarray, flag: str) -> np.ndarray:
    """(n,) bool: a challenge category's ``titled`` or ``random`` flag for each of ``categories``."""
    table = np.zeros(max(c.number for c in FILL_ORDER) + 1, dtype=bool)
    table[[c.number for c in FILL_ORDER]] = [getattr(c, flag) for c in FILL_ORDER]
    return table[categories]


def _seed_mask(lengths: np.ndarray, k: int, random: bool, rng: np.random.Generator) -> np.ndarray:
    """Concatenated per-entry mask: the first ``k`` positions of each playlist, or ``k`` random ones."""
    row = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if not random:
        return position < k
    order = np.argsort(row + rng.random(len(row)), kind="stable")  # rows stay grouped, shuffled inside
    mask = np.zeros(len(row), dtype=bool)
    mask[order[position < k]] = True  # position doubles as the rank inside the shuffled row
    return mask


# ---- what the features know about tracks ---------------------------------------------------------------
@dataclasses.dataclass
class FeatureContext:
    """Per-track facts from the store the candidate models were fitted on."""

    track_share: np.ndarray  # (n_tracks,) float32 log((playlists holding it + 1) / (n_playlists + 1))
    album_share: np.ndarray  # same, summed over the album's tracks (NaN: unknown album)
    artist_share: np.ndarray  # same for the artist
    track_artist: np.ndarray  # (n_tracks,) int32, -1 unknown
    track_album: np.ndarray  # (n_tracks,) int32, -1 unknown
    log_duration: np.ndarray  # (n_tracks,) float32 log(duration_ms), NaN unknown
    follows: sp.csr_matrix  # (n_tracks, n_tracks) share of i's playlists where j comes 1..FOLLOW_WINDOW after i
    playlists: sp.csr_matrix  # (n_playlists, n_tracks) binary: which training playlists hold which tracks

    @classmethod
    def from_store(cls, store: Store) -> "FeatureContext":
        counts = np.diff(store.csr(binary=True).tocsc().indptr).astype(np.float64)
        norm = np.log(store.n_playlists + 1.0)

        def group_share(groups: np.ndarray, n_groups: int) -> np.ndarray:
            known = groups >= 0
            totals = np.bincount(groups[known], weights=counts[known], minlength=n_groups)
            out = np.full(len(groups), np.nan, dtype=np.float32)
            out[known] = np.log(totals[groups[known]] + 1.0) - norm
            return out

        duration = store.tracks.column("duration_ms")
        duration = pc.fill_null(duration, 0).to_numpy(zero_copy_only=False).astype(np.float64)
        log_duration = np.where(duration > 0, np.log(np.maximum(duration, 1.0)), np.nan).astype(np.float32)
        return cls(
            track_share=(np.log(counts + 1.0) - norm).astype(np.float32),
            album_share=group_share(store.track_album, store.n_albums),
            artist_share=group_share(store.track_artist, store.n_artists),
            track_artist=np.asarray(store.track_artist, dtype=np.int32),
            track_album=np.asarray(store.track_album, dtype=np.int32),
            log_duration=log_duration,
            follows=follow_matrix(store.indptr, store.indices, store.n_tracks, counts),
            playlists=store.csr(binary=True),
        )

    def save(self, directory) -> None:
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in SPARSE_FIELDS}
        save_npz(directory / CONTEXT_FILE, **arrays, follows_data=self.follows.data,
                 follows_indices=self.follows.indices, follows_indptr=self.follows.indptr,
                 playlists_indices=self.playlists.indices, playlists_indptr=self.playlists.indptr)

    @classmethod
    def load(cls, directory, n_tracks: int) -> "FeatureContext":
        arrays = load_npz(directory / CONTEXT_FILE)
        follows = sp.csr_matrix((arrays.pop("follows_data"), arrays.pop("follows_indices"),
                                 arrays.pop("follows_indptr")), shape=(n_tracks, n_tracks))
        indices, indptr = arrays.pop("playlists_indices"), arrays.pop("playlists_indptr")
        playlists = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                                  shape=(len(indptr) - 1, n_tracks))
        context = cls(**{f.name: arrays[f.name] for f in dataclasses.fields(cls) if f.name not in SPARSE_FIELDS},
                      follows=follows, playlists=playlists)
        if any(len(arrays[name]) != n_tracks for name in arrays):
            raise ValueError(f"{CONTEXT_FILE} does not match config.json's {n_tracks} tracks")
        return context

    @cached_property
    def playlists_by_track(self) -> sp.csr_matrix:
        """(n_tracks, n_playlists) the transpose of ``playlists``, for seed -> playlist overlaps."""
        return self.playlists.T.tocsr()


def follow_matrix(indptr: np.ndarray, indices: np.ndarray, n_tracks: int, counts: np.ndarray) -> sp.csr_matrix:
    """(n_tracks, n_tracks) float32: in how many playlists j comes within ``FOLLOW_WINDOW`` places after i
    (closer places weigh more: 1 / gap), divided by the number of playlists holding i."""
    row = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    sources, targets, weights = [], [], []
    for gap in range(1, FOLLOW_WINDOW + 1):
        same = row[:-gap] == row[gap:]
        sources.append(indices[:-gap][same])
        targets.append(indices[gap:][same])
        weights.append(np.full(int(same.sum()), 1.0 / gap, dtype=np.float32))
    matrix = sp.csr_matrix((np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))),
                           shape=(n_tracks, n_tracks), dtype=np.float32)
    matrix.sum_duplicates()
    matrix.data /= np.repeat(np.maximum(counts, 1.0), np.diff(matrix.indptr)).astype(np.float32)
    return matrix


# ---- candidates and features -------------------------------------------------------------------------
PLAYLIST_FEATURES = ("n_seeds", "titled", "seed_artists_per_seed", "seed_albums_per_seed", "seed_share_mean")
TRACK_FEATURES = ("track_share", "album_share", "artist_share", "n_models", "same_artist", "same_artist_frac",
                  "same_album", "same_album_frac", "last_same_artist", "last_same_album", "duration_gap")
COOCCUR_FEATURES = ("cooc_max", "cooc_mean", "cooc_sum", "cooc_recent_max", "cooc_last")
EXPANSION_FEATURES = ("expansion_cooc_max", "expansion_cooc_sum", "expansion_cooc_top")
ALS_FEATURES = ("als_seed_mean_dot", "als_last_dot")
FOLLOW_FEATURES = ("follows_max", "follows_sum", "follows_last")
NEIGHBOUR_FEATURES = ("knn_score", "knn_share")


def feature_names(model_names: list[str], knn_candidates: bool = False, seed_order: bool = False) -> list[str]:
    names = [f"{m}_{kind}" for m in model_names for kind in ("score", "rank")]
    if seed_order:
        names.append("first_seeds")
    names += list(TRACK_FEATURES) + list(PLAYLIST_FEATURES) + list(FOLLOW_FEATURES) + list(NEIGHBOUR_FEATURES)
    if knn_candidates:
        names.append("knn_rank")
    if "cooccur" in model_names:
        names += list(COOCCUR_FEATURES) + list(EXPANSION_FEATURES)
    if "als" in model_names:
        names += list(ALS_FEATURES)
    return names


@dataclasses.dataclass
class CandidateBlock:
    """Candidates of a batch of playlists: one row per (playlist, candidate) pair, sorted by (row, track)."""

    rows: np.ndarray  # (pairs,) int64 playlist row in the batch
    tracks: np.ndarray  # (pairs,) int32
    features: np.ndarray  # (pairs, n_features) float32
    base_scores: np.ndarray  # (batch, n_tracks) the first model's scores (seeds not excluded)
    recall_keys: np.ndarray  # row * n_tracks + track of the models' union at recall_width (or n_candidates)
    recall_rank: np.ndarray  # best rank any model gave each of them (0 = top)


def candidate_block(models: dict, context: FeatureContext, indptr: np.ndarray, indices: np.ndarray,
                    titles: list[str | None] | None, n_candidates: int, recall_width: int = 0,
                    neighbours: int = NEIGHBOURS, knn_candidates: int = 0,
                    expansion_candidates: int = 0, first_seeds: np.ndarray | None = None) -> CandidateBlock:
    """Candidates (union of each model's top ``n_candidates``, of the playlist-neighbour kNN's top
    ``knn_candidates`` and of the query expansion's top ``expansion_candidates``, seeds excluded) and their
    features (``neighbours``: how many similar training playlists the kNN reads; ``first_seeds``, (b,) bool
    whether a playlist's seeds are its first tracks, adds the ``first_seeds`` feature, None leaves it out).

    ``recall_width`` > ``n_candidates`` also collects the wider union (``recall_keys``, ``recall_rank``) to
    measure candidate recall at larger n; the candidates and their features do not change with it.
    """
    b = len(indptr) - 1
    n_tracks = len(context.track_share)
    seed_rows = np.repeat(np.arange(b), np.diff(indptr))
    seed_keys = np.unique(seed_rows * np.int64(n_tracks) + indices)  # distinct seeds per row
    width = min(max(n_candidates, recall_width, EXPANSION_SEEDS), n_tracks)  # the expansion reads the first 30
    blocks, ranks = [], []
    base_scores, expansion = None, None
    for model in models.values():
        scores = np.asarray(model._score_with_fallback(indptr, indices, titles), dtype=np.float32)
        if base_scores is None:
            base_scores = scores.copy()
        scores[seed_keys // n_tracks, seed_keys % n_tracks] = -np.inf
        ids, _ = top_k(scores, width)  # (b, width), -1 pads rows with fewer tracks
        if expansion is None:
            expansion = ids[:, :EXPANSION_SEEDS]
        blocks.append(scores)
        ranks.append((_row_keys(ids, n_tracks)[ids >= 0], np.broadcast_to(np.arange(width), ids.shape)[ids >= 0]))
    weights = neighbour_weights(context, indptr, indices, neighbours)
    knn_scores = (weights @ context.playlists).tocsr()
    knn_keys, knn_rank = _sparse_top(knn_scores, knn_candidates, seed_keys)
    expansion_keys = np.zeros(0, np.int64)
    if expansion_candidates and "cooccur" in models:
        expansion_keys, _ = _sparse_top(_expansion_scores(models["cooccur"].similarity, expansion),
                                        expansion_candidates, seed_keys)
    # union of the top lists: sorted distinct (row, track) keys, with the best rank any model gave (the kNN's and
    # the expansion's songs join at any n_candidates; the recall table per n is the models' alone)
    keys = np.unique(np.concatenate([k for k, _ in ranks] + [knn_keys, expansion_keys]))
    rank_columns = [_lookup(keys, k, r) for k, r in ranks]
    knn_column = _lookup(keys, knn_keys, knn_rank)
    best = np.fmin.reduce(rank_columns, axis=0) if rank_columns else np.full(len(keys), np.nan)
    proposed = np.isfinite(best)
    recall_keys, recall_rank = keys[proposed], best[proposed].astype(np.int32)
    keep = (best < n_candidates) | np.isfinite(knn_column) | np.isin(keys, expansion_keys)
    keys = keys[keep]
    rows, tracks = keys // n_tracks, (keys % n_tracks).astype(np.int32)

    columns: list[np.ndarray] = []
    n_models = np.zeros(len(keys), dtype=np.float32)
    for scores, rank in zip(blocks, rank_columns):
        score = scores[rows, tracks]
        rank = np.where(rank[keep] < n_candidates, rank[keep], np.nan)  # proposed by this model, else missing
        columns += [np.where(np.isfinite(score), score, np.nan), rank]
        n_models += np.isfinite(rank)
    del blocks
    if first_seeds is not None:
        columns.append(np.asarray(first_seeds, dtype=np.float32)[rows])

    n_seeds = np.diff(np.searchsorted(seed_keys // n_tracks, np.arange(b + 1))).astype(np.float32)
    seed_row, seed_track = seed_keys // n_tracks, (seed_keys % n_tracks).astype(np.int32)
    pair_seeds = n_seeds[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        same_artist = _shared(rows, context.track_artist[tracks], seed_row, context.track_artist[seed_track])
        same_album = _shared(rows, context.track_album[tracks], seed_row, context.track_album[seed_track])
        seed_duration = _row_mean(seed_row, context.log_duration[seed_track], b)
        last = last_seeds(indptr, indices)[rows]  # -1: no seeds
        columns += [
            context.track_share[tracks], context.album_share[tracks], context.artist_share[tracks], n_models,
            same_artist, same_artist / pair_seeds, same_album, same_album / pair_seeds,
            _same_group(context.track_artist, tracks, last), _same_group(context.track_album, tracks, last),
            np.abs(context.log_duration[tracks] - seed_duration[rows]),
        ]
        titled = np.array([bool(t and t.strip()) for t in titles], dtype=np.float32) if titles is not None \
            else np.zeros(b, np.float32)
        playlist = np.column_stack([
            n_seeds, titled,
            _distinct_per_row(seed_row, context.track_artist[seed_track], b) / n_seeds,
            _distinct_per_row(seed_row, context.track_album[seed_track], b) / n_seeds,
            _row_mean(seed_row, context.track_share[seed_track], b),
        ])
        columns += list(playlist[rows].T)
        follows_max, follows_sum, _, follows_last = _seed_similarity(context.follows, indptr, indices, keys,
                                                                      recent=False)
        columns += [follows_max, follows_sum, follows_last]
        columns += neighbour_evidence(context, weights, keys, knn_scores)
        if knn_candidates:
            columns.append(np.where(knn_column[keep] < knn_candidates, knn_column[keep], np.nan))
        if "cooccur" in models:
            cooc_max, cooc_sum, cooc_recent, cooc_last = _seed_similarity(models["cooccur"].similarity, indptr,
                                                                          indices, keys)
            columns += [cooc_max, cooc_sum / np.maximum(pair_seeds, 1), cooc_sum, cooc_recent, cooc_last]
            columns += _expansion_similarity(models["cooccur"].similarity, expansion, keys)
        if "als" in models:
            columns += _als_dots(models["als"].item_factors, seed_row, seed_track, rows, tracks, last, b)
    features = np.column_stack(columns).astype(np.float32) if len(keys) else \
        np.zeros((0, len(columns)), np.float32)
    return CandidateBlock(rows, tracks, features, base_scores, recall_keys, recall_rank)


def _row_keys(ids: np.ndarray, n_tracks: int) -> np.ndarray:
    return np.arange(ids.shape[0], dtype=np.int64)[:, None] * n_tracks + ids


def _lookup(keys: np.ndarray, table_keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """float32 values where ``table_keys == keys``; NaN where ``keys`` is not in the table."""
    table_keys, values = np.asarray(table_keys).ravel(), np.asarray(values).ravel()
    out = np.full(len(keys), np.nan, dtype=np.float32)
    if len(table_keys) == 0:
        return out
    order = np.argsort(table_keys, kind="stable")
    sorted_keys = table_keys[order]
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    hit = sorted_keys[pos] == keys
    out[hit] = values[order[pos[hit]]]
    return out


def _shared(rows, groups, seed_rows, seed_groups) -> np.ndarray:
    """How many of the row's seeds are in the candidate's group (artist/album); NaN for unknown groups."""
    width = np.int64(max(int(groups.max(initial=-1)), int(seed_groups.max(initial=-1))) + 2)
    known = seed_groups >= 0
    table, counts = np.unique(seed_rows[known] * width + seed_groups[known], return_counts=True)
    out = _lookup(rows * width + groups, table, counts)
    out[np.isnan(out)] = 0.0
    out[groups < 0] = np.nan
    return out


def _distinct_per_row(seed_rows, groups, b) -> np.ndarray:
    known = groups >= 0
    width = np.int64(int(groups.max(initial=-1)) + 1)
    distinct = np.unique(seed_rows[known] * width + groups[known]) // max(width, 1)
    return np.bincount(distinct, minlength=b).astype(np.float32)


def _row_mean(seed_rows, values, b) -> np.ndarray:
    """Per-row mean of ``values`` (NaN values and empty rows give NaN)."""
    known = np.isfinite(values)
    total = np.bincount(seed_rows[known], weights=values[known], minlength=b)
    count = np.bincount(seed_rows[known], minlength=b)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def _seed_similarity(similarity: sp.csr_matrix, indptr, indices, keys, recent: bool = True) -> list:
    """For each (row, candidate) key, from a track x track matrix: the max and the sum of sim(seed, candidate)
    over the row's seeds, the max over its last ``RECENT_SEEDS`` seeds (None when ``recent`` is False: not
    computed), and the last seed's alone (0 when the candidate is not among a seed's entries)."""
    n_tracks = similarity.shape[1]
    lengths = np.diff(indptr)
    seed_rows = np.repeat(np.arange(len(lengths)), lengths)
    from_end = np.repeat(indptr[1:], lengths) - np.arange(len(indices))  # 1 for the last seed
    out = []
    for use in (np.ones(len(indices), dtype=bool), from_end <= RECENT_SEEDS if recent else None, from_end == 1):
        if use is None:
            out.append(None)
            continue
        starts, stops = similarity.indptr[indices[use]], similarity.indptr[indices[use] + 1]
        width = stops - starts
        positions = np.repeat(starts - np.cumsum(width) + width, width) + np.arange(width.sum())
        pair_keys = np.repeat(seed_rows[use], width) * np.int64(n_tracks) + similarity.indices[positions]
        values = similarity.data[positions]
        order = np.argsort(pair_keys, kind="stable")
        pair_keys, values = pair_keys[order], values[order]
        unique, first = np.unique(pair_keys, return_index=True)
        top = np.maximum.reduceat(values, first) if len(unique) else np.zeros(0)
        out.append(np.nan_to_num(_lookup(keys, unique, top), nan=0.0))
        if len(out) == 1:
            total = np.add.reduceat(values.astype(np.float64), first) if len(unique) else np.zeros(0)
            out.append(np.nan_to_num(_lookup(keys, unique, total), nan=0.0))
    return out


def _expansion_similarity(similarity: sp.csr_matrix, top: np.ndarray, keys: np.ndarray) -> list[np.ndarray]:
    """Co-occurrence of each (row, candidate) key with the row's expansion songs ``top`` ((b, e) ids, best first,
    -1 for none) as if they were seeds: the max and the sum over them, and the top song's alone (the sum takes
    most of the ranker's gain: README two-stage section)."""
    valid = top >= 0
    indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))])
    indices = top[:, ::-1][valid[:, ::-1]].astype(np.int64)  # best last: _seed_similarity's "last seed"
    top_max, top_sum, _, best = _seed_similarity(similarity, indptr, indices, keys, recent=False)
    return [top_max, top_sum, best]


def _expansion_scores(similarity: sp.csr_matrix, top: np.ndarray) -> sp.csr_matrix:
    """(b, n_tracks) summed co-occurrence of every track with each row's expansion songs ``top`` ((b, e) ids,
    -1 for none): ``expansion_cooc_sum`` for every track at once, to draw candidates from."""
    valid = top >= 0
    rows = np.repeat(np.arange(len(top)), valid.sum(axis=1))
    query = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, top[valid])), shape=(len(top), similarity.shape[0]))
    return (query @ similarity).tocsr()


def last_seeds(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(b,) the last seed of each playlist (its latest track when seeds are in playlist order), -1 if none."""
    lengths = np.diff(indptr)
    return np.where(lengths > 0, indices[np.maximum(indptr[1:] - 1, 0)] if len(indices) else -1, -1)


def _same_group(groups: np.ndarray, tracks: np.ndarray, last: np.ndarray) -> np.ndarray:
    """1.0 when the candidate's artist/album is the last seed's, NaN when either is unknown."""
    mine, theirs = groups[tracks], np.where(last >= 0, groups[np.maximum(last, 0)], -1)
    return np.where((mine >= 0) & (theirs >= 0), (mine == theirs).astype(np.float32), np.nan)


def _als_dots(factors, seed_row, seed_track, rows, tracks, last, b) -> list[np.ndarray]:
    """Candidate factor . the mean of the seeds' factors, and . the last seed's (NaN: no seeds)."""
    n = np.bincount(seed_row, minlength=b)
    seeds = sp.csr_matrix((np.ones(len(seed_row), np.float32), (seed_row, seed_track)), shape=(b, len(factors)))
    seed_mean = (seeds @ factors) / np.maximum(n, 1)[:, None].astype(np.float32)  # (b, f)
    candidate = factors[tracks]
    mean_dot = np.einsum("ij,ij->i", seed_mean[rows], candidate)
    last_dot = np.einsum("ij,ij->i", factors[np.maximum(last, 0)], candidate)
    mean_dot[last < 0] = np.nan
    last_dot[last < 0] = np.nan
    return [mean_dot, last_dot]


def neighbour_weights(context: FeatureContext, indptr: np.ndarray, indices: np.ndarray,
                      neighbours: int) -> sp.csr_matrix:
    """User-based kNN over the training playlists: (b, n_training_playlists) the similarity of each playlist's
    ``neighbours`` most similar training playlists by seed overlap (cosine, each seed weighted by its idf =
    log(playlists / playlists holding it), so a shared rare song says more than a shared hit), 0 elsewhere.
    Playlists without seeds have none. A row's neighbours come from its own seeds only, so they do not depend on
    the batch."""
    playlists = context.playlists
    n_playlists, n_tracks = playlists.shape
    b = len(indptr) - 1
    # copies: scipy sorts a CSR's indices in place, and the caller's seeds keep their playlist order
    seeds = sp.csr_matrix((np.ones(len(indices), np.float32), indices.copy(), indptr.copy()), shape=(b, n_tracks))
    seeds.sum_duplicates()
    n_seeds = np.diff(seeds.indptr)
    held = np.diff(context.playlists_by_track.indptr)[seeds.indices]
    seeds.data = np.log((n_playlists + 1.0) / (held + 1.0)).astype(np.float32)
    overlap = (seeds @ context.playlists_by_track).tocsr()
    overlap.sort_indices()
    row = np.repeat(np.arange(b), np.diff(overlap.indptr))
    sizes = np.diff(playlists.indptr).astype(np.float32)
    overlap.data /= np.sqrt(sizes[overlap.indices] * np.maximum(n_seeds[row], 1))
    order = np.lexsort((-overlap.data, row))  # per row, most similar first (ties: lower playlist row first)
    place = np.arange(len(order)) - overlap.indptr[row[order]]
    keep = order[place < neighbours]
    return sp.csr_matrix((overlap.data[keep], (row[keep], overlap.indices[keep])), shape=(b, n_playlists))


def neighbour_evidence(context: FeatureContext, weights: sp.csr_matrix, keys: np.ndarray,
                       scores: sp.csr_matrix | None = None) -> list[np.ndarray]:
    """Per (row, candidate) key, from :func:`neighbour_weights`: the summed similarity of the row's neighbours
    holding the candidate and the share of its neighbours holding it (0 for a row without neighbours).
    ``scores``: ``weights @ context.playlists`` when the caller has it already."""
    n_tracks = context.playlists.shape[1]
    summed = _lookup_sparse(weights @ context.playlists if scores is None else scores, keys, n_tracks)
    ones = weights.copy()
    ones.data[:] = 1.0
    held_by = _lookup_sparse(ones @ context.playlists, keys, n_tracks)
    found = np.maximum(np.diff(weights.indptr), 1)[keys // n_tracks]
    return [summed, held_by / found]


def _sparse_top(scores: sp.csr_matrix, k: int, exclude_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row * n_tracks + track keys of each row's ``k`` highest positive entries of a (b, n_tracks) CSR matrix,
    keys in ``exclude_keys`` left out (ties: lower track id first), and their ranks (0 = top)."""
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n_tracks = scores.shape[1]
    row = np.repeat(np.arange(scores.shape[0]), np.diff(scores.indptr))
    keys = row * np.int64(n_tracks) + scores.indices
    usable = (scores.data > 0) & ~np.isin(keys, exclude_keys)
    keys, row, values = keys[usable], row[usable], scores.data[usable]
    order = np.lexsort((keys, -values, row))
    place = np.arange(len(order)) - np.searchsorted(row[order], row[order])
    top = order[place < k]
    return keys[top], place[place < k]


def _lookup_sparse(matrix: sp.csr_matrix, keys: np.ndarray, n_tracks: int) -> np.ndarray:
    """Values of a (b, n_tracks) sparse matrix at row * n_tracks + column keys (0 where absent)."""
    coo = matrix.tocoo()
    return np.nan_to_num(_lookup(keys, coo.row.astype(np.int64) * n_tracks + coo.col, coo.data), nan=0.0)
