"""RecSys Challenge 2018 metrics, vectorised over playlists.

Inputs are a ``(n, K)`` integer matrix of ranked recommendations (``-1`` = padding, ignored) and the
ground truth G as CSR arrays (``gt_indptr``, ``gt_indices``) over the same id space. All ids are
non-negative integers; ground-truth ids that a model can never recommend (tracks unknown to its store)
may use ids beyond its vocabulary, they simply never match.

The headline figures follow Spotify's own challenge metrics code (``metrics.py``, Spotify AB 2017, whose
figures the leaderboard shows: the winner's R-precision 0.2241, NDCG 0.3946, clicks 1.784):

* Only the first 500 recommendations count (columns beyond :data:`CHALLENGE_K` are ignored).
* G is a set: repeated ground-truth ids count once (``|G|`` = distinct held-out tracks).
* A row with an empty G has undefined metrics (NaN); aggregates skip NaN rows.

Per playlist (``R`` = the ranked list, ``rel_i`` = 1 when ``R[i]`` is the first occurrence of a G track):

* ``r_precision`` = |G ∩ R[1..|G|]| / |G| (the challenge's primary metric; track matches only).
* ``ndcg`` (the headline NDCG, Spotify's definition): truncate R to its first 500 entries, drop repeats
  (and ``-1`` padding) keeping each track's first occurrence, so later tracks move up; then
  DCG = Σ_i rel_i / log2(i + 1) over that list (i from 1) and IDCG = Σ_{i=1}^{min(|G|, 500)} 1 / log2(i + 1),
  the DCG of min(|G|, 500) relevant tracks in a row; NDCG = DCG / IDCG.
* ``ndcg_rules_page``: the variant written on the challenge's rules page, kept for comparison only:
  DCG = rel_1 + Σ_{i≥2} rel_i / log2 i with repeats keeping their slots, IDCG = 1 + Σ_{i=2}^{|G ∩ R|} 1/log2 i,
  0 when nothing relevant is recommended. Normalising by the hits instead of |G| rewards short, precise
  lists and gives much higher figures than the leaderboard's; never quote it as "NDCG".
* ``clicks``: Recommended Songs clicks = ⌊(rank of first relevant − 1) / 10⌋ in R as given (repeats keep
  their slots, as in Spotify's code), 51 when none of the first 500 is relevant (with K < 500, "none"
  means none within K).
* ``recall_500``: |G ∩ R[1..500]| / |G|.
* ``r_precision_artist``: R-precision with the artist partial credit the challenge added later
  (``/work/shared/docs/mpd.md``: "each recommended track in R[1..|G|] that is not in G but whose artist
  is one of G's artists earns 0.25"), i.e. (|G ∩ R[1..|G|]| + 0.25 · c) / |G|. Published implementations
  differ on how often one artist may be credited; here c counts, within R[1..|G|], first occurrences that
  are not track matches but whose artist a is the artist of some G track, at most ``n_G(a) - m(a)`` per
  artist (``n_G(a)`` = G tracks by a, ``m(a)`` = exact matches by a in R[1..|G|]), so every G track backs
  at most one credit, exact or partial, and the figure never exceeds 1. Unknown artists (-1) and repeats
  never earn credit. Without artist data this metric is NaN. A secondary figure; R-precision is the headline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METRICS = ("r_precision", "r_precision_artist", "ndcg", "ndcg_rules_page", "clicks", "recall_500")
CHALLENGE_K = 500
NO_CLICK = 51
ARTIST_CREDIT = 0.25
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0


def _unique(keys: np.ndarray, return_counts: bool = False):
    """Sorted distinct values (and their counts) by sort + compare; faster than ``np.unique`` here."""
    keys = np.sort(keys, kind="stable" if keys.dtype.itemsize <= 2 else None)
    if len(keys) == 0:
        return (keys, np.zeros(0, dtype=np.int64)) if return_counts else keys
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    if not return_counts:
        return keys[starts]
    return keys[starts], np.diff(np.append(starts, len(keys)))


def _ranked(recs: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every entry as ``row * width + id + 1`` sorted (rows in order, equal ids by rank), with its flat index.

    One sort of packed int64 values (key, then rank) instead of a stable per-row argsort.
    """
    n, k = recs.shape
    packed = (np.arange(n, dtype=np.int64)[:, None] * width + recs.astype(np.int64) + 1) * k + np.arange(k)
    packed = np.sort(packed.reshape(-1))
    keys, rank = np.divmod(packed, k)
    flat = (keys // width) * k + rank
    return keys, flat


def first_occurrence(recs: np.ndarray) -> np.ndarray:
    """(n, K) bool: True where the entry is a valid id (>= 0) seen for the first time in its row."""
    recs = np.asarray(recs)
    n, k = recs.shape
    width = int(recs.max(initial=-1)) + 2
    keys, flat = _ranked(recs, width)
    return _scatter_first(keys, flat, width, n, k)


def _scatter_first(keys: np.ndarray, flat: np.ndarray, width: int, n: int, k: int) -> np.ndarray:
    first_sorted = np.ones(len(keys), dtype=bool)
    first_sorted[1:] = keys[1:] != keys[:-1]
    first_sorted &= keys % width != 0  # id -1 (padding)
    first = np.empty(n * k, dtype=bool)
    first[flat] = first_sorted
    return first.reshape(n, k)


def relevance(recs: np.ndarray, gt_indptr: np.ndarray, gt_indices: np.ndarray,
              return_first: bool = False):
    """``(rel (n, K) bool, g_size (n,) int64)``: first-occurrence hits and distinct ground-truth sizes.

    With ``return_first``, also the (n, K) first-occurrence mask.
    """
    recs = np.asarray(recs)
    n, k = recs.shape
    gt_indptr = np.asarray(gt_indptr, dtype=np.int64)
    gt_indices = np.asarray(gt_indices, dtype=np.int64)
    if len(gt_indptr) != n + 1:
        raise ValueError(f"ground truth has {len(gt_indptr) - 1} rows but recommendations have {n}.")
    width = int(max(recs.max(initial=-1), gt_indices.max(initial=-1))) + 2
    gt_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(gt_indptr))
    gt_keys = _unique(gt_rows * width + gt_indices + 1)  # sorted, distinct per row
    g_size = np.bincount(gt_keys // width, minlength=n).astype(np.int64)
    keys, flat = _ranked(recs, width)
    first = _scatter_first(keys, flat, width, n, k)
    hit_sorted = np.zeros(len(keys), dtype=bool)
    if len(gt_keys):
        pos = np.minimum(np.searchsorted(gt_keys, keys), len(gt_keys) - 1)  # sorted needles: cache friendly
        hit_sorted = gt_keys[pos] == keys
    hit = np.empty(n * k, dtype=bool)
    hit[flat] = hit_sorted
    rel = hit.reshape(n, k) & first
    return (rel, g_size, first) if return_first else (rel, g_size)


def _rules_page_discounts(k: int) -> np.ndarray:
    ranks = np.arange(1, k + 1, dtype=np.float64)
    disc = np.ones(k, dtype=np.float64)
    disc[1:] = 1.0 / np.log2(ranks[1:])
    return disc


def artist_credit(recs: np.ndarray, rel: np.ndarray, g_size: np.ndarray, gt_indptr: np.ndarray,
                  gt_indices: np.ndarray, track_artist: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
    """(n,) number of partial-credit units per row (see the module docstring for the rule)."""
    n, k = recs.shape
    gt_indptr = np.asarray(gt_indptr, dtype=np.int64)
    gt_indices = np.asarray(gt_indices, dtype=np.int64)
    track_artist = np.asarray(track_artist, dtype=np.int64)

    def artist_of(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        known = (ids >= 0) & (ids < len(track_artist))
        out = np.full(ids.shape, -1, dtype=np.int64)
        out[known] = track_artist[ids[known]]
        return out

    # Distinct G tracks per row, then (row, artist) counts n_G(a).
    gt_rows = np.repeat(np.arange(n), np.diff(gt_indptr))
    tw = int(max(gt_indices.max(initial=-1), 0)) + 1
    g_pairs = _unique(gt_rows * tw + gt_indices)
    g_rows, g_tracks = g_pairs // tw, g_pairs % tw
    g_art = artist_of(g_tracks)
    keep = g_art >= 0
    aw = int(max(track_artist.max(initial=-1), 0)) + 1
    g_keys, g_counts = _unique(g_rows[keep] * aw + g_art[keep], return_counts=True)
    if len(g_keys) == 0:
        return np.zeros(n, dtype=np.float64)

    window = np.arange(k)[None, :] < g_size[:, None]  # R[1..|G|]
    rec_art = artist_of(np.where(window, recs, -1))
    if first is None:
        first = first_occurrence(recs)
    valid = first & window & (rec_art >= 0)
    rows = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], (n, k))

    def counts_against_g(mask: np.ndarray) -> np.ndarray:
        keys = rows[mask] * aw + rec_art[mask]
        pos = np.clip(np.searchsorted(g_keys, keys), 0, len(g_keys) - 1)
        in_g = g_keys[pos] == keys
        return np.bincount(pos[in_g], minlength=len(g_keys))

    exact = counts_against_g(valid & rel)  # m(a)
    partial = counts_against_g(valid & ~rel)  # candidates for partial credit, by G artist
    units = np.minimum(partial, g_counts - exact)
    return np.bincount(g_keys // aw, weights=units, minlength=n).astype(np.float64)


def compute_metrics(recs: np.ndarray, gt_indptr: np.ndarray, gt_indices: np.ndarray,
                    track_artist: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-playlist metrics: ``{metric: (n,) float64}`` for every name in :data:`METRICS`.

    Columns beyond the first :data:`CHALLENGE_K` are ignored, as the challenge did."""
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise ValueError(f"recommendations must be an (n, K) matrix, got shape {recs.shape}.")
    n, k = recs.shape
    recs = recs[:, :CHALLENGE_K]
    k = recs.shape[1]
    rel, g_size, first = relevance(recs, gt_indptr, gt_indices, return_first=True)
    relf = rel.astype(np.float64)
    empty = g_size == 0
    denom = np.where(empty, 1, g_size).astype(np.float64)

    window = np.arange(k)[None, :] < g_size[:, None]
    hits_r = (rel & window).sum(axis=1)
    hits = rel.sum(axis=1)
    r_precision = hits_r / denom

    # Spotify's NDCG: ranks in the list with repeats and padding dropped = running count of first occurrences.
    discount = np.concatenate([[0.0], 1.0 / np.log2(np.arange(2, CHALLENGE_K + 2, dtype=np.float64))])
    dedup_rank = np.cumsum(first, axis=1) * rel  # 0 where not relevant -> discount 0
    dcg = discount[dedup_rank].sum(axis=1)
    ideal_dcg = np.cumsum(discount)  # ideal_dcg[m]: m relevant tracks in a row
    ndcg = dcg / ideal_dcg[np.clip(np.minimum(g_size, CHALLENGE_K), 1, None)]

    rules_disc = _rules_page_discounts(k)
    rules_ideal = np.concatenate([[1.0], np.cumsum(rules_disc)])  # [m] for m hits (m=0 -> 1 avoids 0/0)
    ndcg_rules_page = np.where(hits > 0, (relf @ rules_disc) / rules_ideal[hits], 0.0)

    any_hit = rel.any(axis=1)
    first_rank = rel.argmax(axis=1)  # 0-based rank of the first relevant entry
    clicks = np.where(any_hit, first_rank // 10, NO_CLICK).astype(np.float64)

    recall = hits / denom
    if track_artist is not None:
        credit = artist_credit(recs, rel, g_size, gt_indptr, gt_indices, track_artist, first)
        r_precision_artist = (hits_r + ARTIST_CREDIT * credit) / denom
    else:
        r_precision_artist = np.full(n, np.nan)

    out = {
        "r_precision": r_precision,
        "r_precision_artist": r_precision_artist,
        "ndcg": ndcg,
        "ndcg_rules_page": ndcg_rules_page,
        "clicks": clicks,
        "recall_500": recall,
    }
    for values in out.values():
        values[empty] = np.nan
    return out


def bootstrap_ci(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                 level: float = 0.95) -> np.ndarray:
    """Percentile bootstrap CI of the mean for each column of ``values`` (n, m): returns (m, 2).

    NaN rows of a column are dropped before resampling; a column with no finite value gets NaN bounds.
    Vectorised: resample indices in blocks of rows and take every column's mean at once.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n, m = values.shape
    out = np.full((m, 2), np.nan)
    finite = np.isfinite(values)
    # Columns with NaNs in the same rows share one resampling; the common case is all rows finite.
    groups: dict[bytes, list[int]] = {}
    for j in range(m):
        groups.setdefault(np.packbits(finite[:, j]).tobytes(), []).append(j)
    alpha = (1.0 - level) / 2
    for cols in groups.values():
        rows = np.flatnonzero(finite[:, cols[0]])
        if len(rows) == 0:
            continue
        sub = values[np.ix_(rows, cols)]
        rng = np.random.default_rng(seed)
        means = np.empty((samples, len(cols)))
        block = max(1, (1 << 22) // max(1, len(rows)))  # ~4M indices (32 MB) per block
        for start in range(0, samples, block):
            stop = min(samples, start + block)
            idx = rng.integers(0, len(rows), size=(stop - start, len(rows)))
            means[start:stop] = sub[idx].mean(axis=1)
        out[cols] = np.quantile(means, [alpha, 1 - alpha], axis=0).T
    return out


@dataclass
class Scores:
    """Per-playlist metrics plus each playlist's category (1..10; 0 = outside the challenge scheme)."""

    values: dict[str, np.ndarray]
    categories: np.ndarray
    pids: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def summary(self, ci: bool = True) -> dict:
        """``{"overall": {...metrics, n}, "ci95": {metric: [lo, hi]}, "per_category": {"1": {...}, ...}}``."""
        return summarise(self.values, self.categories, ci=ci)


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


def summarise(values: dict[str, np.ndarray], categories: np.ndarray, ci: bool = True) -> dict:
    """Means overall and per category (NaN rows skipped), with bootstrap 95% CIs on the overall means."""
    categories = np.asarray(categories)
    n = len(categories)
    names = [m for m in METRICS if m in values]
    overall = {m: _mean(values[m]) for m in names}
    overall["n"] = int(np.isfinite(values["r_precision"]).sum()) if "r_precision" in values else n
    result: dict = {"overall": overall}
    if ci:
        bounds = bootstrap_ci(np.column_stack([values[m] for m in names])) if n else np.full((len(names), 2), np.nan)
        result["ci95"] = {
            m: (None if np.isnan(bounds[j, 0]) else [float(bounds[j, 0]), float(bounds[j, 1])])
            for j, m in enumerate(names)
        }
    per_category = {}
    for cat in np.unique(categories).tolist():
        rows = categories == cat
        entry = {m: _mean(values[m][rows]) for m in names}
        entry["n"] = int(np.isfinite(values["r_precision"][rows]).sum()) if "r_precision" in values else int(rows.sum())
        per_category[str(cat)] = entry
    result["per_category"] = per_category
    return result


PAIRED_METRICS = ("r_precision", "ndcg", "clicks")


def paired_difference(reference: dict[str, np.ndarray], other: dict[str, np.ndarray],
                      metrics: tuple[str, ...] = PAIRED_METRICS) -> dict:
    """``other - reference`` on the same playlists: per metric the mean per-playlist difference, its paired
    bootstrap 95% CI (resampling playlists, so what both models share cancels) and the relative change of the
    means (None when the reference mean is 0). Playlists where either value is NaN are left out."""
    names = [m for m in metrics if m in reference and m in other]
    out = {}
    for m in names:
        a, b = np.asarray(reference[m], np.float64), np.asarray(other[m], np.float64)
        if a.shape != b.shape:
            raise ValueError(f"paired_difference: {m} has {len(a)} and {len(b)} playlists; score the same split")
        both = np.isfinite(a) & np.isfinite(b)
        diff = (b - a)[both]
        if len(diff) == 0:
            out[m] = {"diff": None, "ci95": None, "relative": None, "n": 0}
            continue
        lo, hi = bootstrap_ci(diff)[0]
        base = float(a[both].mean())
        out[m] = {"diff": float(diff.mean()), "ci95": [float(lo), float(hi)],
                  "relative": float(diff.mean() / base) if base else None, "n": int(both.sum())}
    return out


def reference_metrics(recs: list, ground_truth: list, track_artist=None, k: int | None = None) -> dict[str, np.ndarray]:
    """The same metrics as :func:`compute_metrics`, written as a plain per-playlist Python loop.

    The straightforward definition, kept to cross-check the vectorised code (tests) and as the baseline
    of ``benchmarks/score.py``. Slow: do not use it on real workloads.
    """
    import math

    out = {m: [] for m in METRICS}
    for row, truth in zip(recs, ground_truth):
        row = [int(t) for t in row][: min(k or len(row), CHALLENGE_K)]
        g = set(int(t) for t in truth)
        if not g:
            for m in METRICS:
                out[m].append(math.nan)
            continue
        seen: set[int] = set()
        firsts = []
        for t in row:
            firsts.append(t >= 0 and t not in seen)
            if t >= 0:
                seen.add(t)
        rel = [f and t in g for t, f in zip(row, firsts)]
        hits_r = sum(rel[: len(g)])
        hits = sum(rel)
        out["r_precision"].append(hits_r / len(g))
        out["recall_500"].append(hits / len(g))
        dcg = sum((1.0 if i == 0 else 1.0 / math.log2(i + 1)) for i, r in enumerate(rel) if r)
        idcg = 1.0 + sum(1.0 / math.log2(i) for i in range(2, hits + 1))
        out["ndcg_rules_page"].append(dcg / idcg if hits else 0.0)
        distinct = [t for t, is_first in zip(row, firsts) if is_first]
        sdcg = sum(1.0 / math.log2(i + 2) for i, t in enumerate(distinct) if t in g)
        sidcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(g), CHALLENGE_K)))
        out["ndcg"].append(sdcg / sidcg)
        first = next((i for i, r in enumerate(rel) if r), None)
        out["clicks"].append(float(NO_CLICK if first is None else first // 10))
        if track_artist is None:
            out["r_precision_artist"].append(math.nan)
            continue

        def artist(t: int) -> int:
            return int(track_artist[t]) if 0 <= t < len(track_artist) else -1

        budget: dict[int, int] = {}
        for t in g:
            if artist(t) >= 0:
                budget[artist(t)] = budget.get(artist(t), 0) + 1
        window = list(zip(row[: len(g)], rel[: len(g)]))
        for t, r in window:
            if r and artist(t) >= 0:
                budget[artist(t)] -= 1
        credit = 0
        seen_w: set[int] = set()
        for t, r in window:
            first_time = t >= 0 and t not in seen_w
            if t >= 0:
                seen_w.add(t)
            if first_time and not r and budget.get(artist(t), 0) > 0:
                budget[artist(t)] -= 1
                credit += 1
        out["r_precision_artist"].append((hits_r + ARTIST_CREDIT * credit) / len(g))
    return {m: np.asarray(v, dtype=np.float64) for m, v in out.items()}
