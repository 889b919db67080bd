"""Challenge metrics: hand-computed cases, the vectorised code against the plain loop, bootstrap CIs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segue.evaluate.metrics import (
    METRICS,
    bootstrap_ci,
    compute_metrics,
    first_occurrence,
    paired_difference,
    reference_metrics,
    summarise,
)


def csr(lists):
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lists], out=indptr[1:])
    indices = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if indptr[-1] else np.zeros(0, np.int64)
    return indptr, indices


def score(rows, truths, k=None, track_artist=None):
    k = k or max(len(r) for r in rows)
    recs = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        recs[i, : len(r)] = r
    return compute_metrics(recs, *csr(truths), track_artist=track_artist)


def test_first_occurrence_marks_repeats_and_padding():
    recs = np.array([[3, 1, 3, -1, 1, 2], [5, 5, 5, 5, 5, 5]])
    assert first_occurrence(recs).tolist() == [
        [True, True, False, False, False, True],
        [True, False, False, False, False, False],
    ]


def test_duplicates_and_padding_count_once():
    # G = {1, 2, 3}; R = 1, 9, 2, 2(dup), -1, 3: hits at slots 1, 3, 6.
    m = score([[1, 9, 2, 2, -1, 3]], [[1, 2, 3]])
    assert m["r_precision"][0] == pytest.approx(2 / 3)
    assert m["recall_500"][0] == pytest.approx(1.0)
    # Spotify's NDCG drops the repeat and the padding first: R' = 1, 9, 2, 3, hits at ranks 1, 3, 4.
    dcg = 1 / math.log2(2) + 1 / math.log2(4) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"][0] == pytest.approx(dcg / idcg)
    # The rules page's variant keeps the slots and normalises by the 3 hits.
    rules_dcg = 1 + 1 / math.log2(3) + 1 / math.log2(6)
    rules_idcg = 1 + 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg_rules_page"][0] == pytest.approx(rules_dcg / rules_idcg)
    assert m["clicks"][0] == 0


def test_a_duplicated_hit_inside_the_window_counts_once():
    m = score([[1, 1, 1]], [[1, 2, 3]])
    assert m["r_precision"][0] == pytest.approx(1 / 3)
    assert m["ndcg_rules_page"][0] == pytest.approx(1.0)  # one hit at rank 1: DCG = IDCG = 1
    assert m["ndcg"][0] == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5))  # IDCG over |G| = 3


def test_repeated_ground_truth_is_a_set():
    m = score([[7, 8]], [[7, 7, 8]])
    assert m["r_precision"][0] == 1.0 and m["recall_500"][0] == 1.0


def test_fewer_recommendations_than_ground_truth():
    m = score([[4]], [[1, 2, 3, 4]], k=6)
    assert m["r_precision"][0] == pytest.approx(0.25)
    assert m["recall_500"][0] == pytest.approx(0.25)
    assert m["ndcg_rules_page"][0] == pytest.approx(1.0)
    # IDCG over min(|G|, 500) = 4 ranks, not over the K = 6 columns nor the single hit
    assert m["ndcg"][0] == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5 + 1 / math.log2(5)))


def test_nothing_relevant_gives_51_clicks_and_zero_ndcg():
    m = score([[5, 6, 7]], [[1, 2]])
    assert m["clicks"][0] == 51
    assert m["ndcg"][0] == 0 and m["ndcg_rules_page"][0] == 0 and m["r_precision"][0] == 0
    empty = score([[-1, -1]], [[1]])
    assert empty["clicks"][0] == 51 and empty["ndcg"][0] == 0


@pytest.mark.parametrize(("rank", "clicks"), [(1, 0), (10, 0), (11, 1), (20, 1), (21, 2), (500, 49)])
def test_clicks_count_pages_of_ten_before_the_first_hit(rank, clicks):
    row = list(range(1000, 1000 + 500))
    row[rank - 1] = 1
    m = score([row], [[1]])
    assert m["clicks"][0] == clicks


def test_rules_page_ndcg_uses_the_rank_one_special_case():
    # One hit at rank 2: DCG = 1/log2(2) = 1, IDCG for one hit = 1 -> 1 (the rules page's formula).
    m = score([[9, 1]], [[1, 2]])
    assert m["ndcg_rules_page"][0] == pytest.approx(1.0)
    assert m["ndcg"][0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_only_the_first_500_recommendations_count():
    # |G| = 600 > 500: IDCG is 500 hits in a row; a hit at slot 501 is beyond the challenge's list.
    truth = list(range(600))
    m = score([list(range(500)) + [550]], [truth])
    assert m["ndcg"][0] == pytest.approx(1.0)
    assert m["recall_500"][0] == pytest.approx(500 / 600)
    late = score([[1000 + i for i in range(500)] + [1]], [[1]])
    assert late["clicks"][0] == 51 and late["ndcg"][0] == 0


# artist of track t: tracks 0-3 -> artist 0, 4-5 -> 1, 6-7 -> 2, 8-9 -> 3, 10 -> unknown
ARTISTS = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, -1])


@pytest.mark.parametrize(
    ("recs", "truth", "expected"),
    [
        ([2, 3, 5], [0, 1, 4], 0.75 / 3),  # three artist matches, no track match
        ([0, 2, 3], [0, 1, 4], (1 + 0.25) / 3),  # artist 0 has 2 G tracks, 1 used by the exact match
        ([2, 2, 9], [0, 1, 4], 0.25 / 3),  # a duplicate earns nothing; artist 3 not in G
        ([10, 6, 7], [0, 1, 4], 0.0),  # unknown artist and artists outside G earn nothing
        ([0, 1, 4], [0, 1, 4], 1.0),  # all exact: no room for credit
        ([9, 8, 6, 2, 3], [0, 1, 4], 0.0),  # artist matches after R[1..|G|] do not count
        ([1, 2], [0, 4, 5], 0.25 / 3),  # artist 0 credited once: it has one G track
    ],
)
def test_artist_partial_credit(recs, truth, expected):
    m = score([recs], [truth], track_artist=ARTISTS)
    assert m["r_precision_artist"][0] == pytest.approx(expected)
    assert m["r_precision_artist"][0] >= m["r_precision"][0]


def test_without_artists_the_artist_metric_is_nan():
    assert np.isnan(score([[1]], [[1]])["r_precision_artist"][0])


def test_rows_are_independent_and_empty_truth_is_nan():
    m = score([[1, 2], [1, 2], [3, 4]], [[1], [], [2]])
    assert m["r_precision"][0] == 1.0 and np.isnan(m["r_precision"][1]) and m["r_precision"][2] == 0
    assert m["clicks"][2] == 51


def test_vectorised_matches_the_plain_loop_on_random_data():
    rng = np.random.default_rng(3)
    n, k, n_tracks = 200, 50, 120
    recs = rng.integers(-1, n_tracks, size=(n, k))
    truths = [rng.integers(0, n_tracks, size=rng.integers(1, 70)).tolist() for _ in range(n)]
    artists = rng.integers(-1, 15, size=n_tracks)
    fast = compute_metrics(recs, *csr(truths), track_artist=artists)
    slow = reference_metrics(recs.tolist(), truths, artists)
    for metric in METRICS:
        np.testing.assert_allclose(fast[metric], slow[metric], rtol=1e-12, atol=1e-12, err_msg=metric)


# ---- the published formulas, transcribed plainly: one playlist at a time, Python lists and sets --------
# Spotify's challenge metrics (RecSys Challenge 2018): R = the submitted list, cut to its first 500
# entries; G = the held-out tracks as a set. Written from the definitions in /work/shared/docs/mpd.md.
def published_r_precision(truth: list, recs: list) -> float:
    g = set(truth)
    return len(set(recs[:500][: len(g)]) & g) / len(g)


def published_ndcg(truth: list, recs: list) -> float:
    g = set(truth)
    distinct, seen = [], set()
    for track in recs[:500]:  # truncate first, then drop repeats keeping the first
        if track not in seen:
            seen.add(track)
            distinct.append(track)
    dcg = sum(1 / math.log2(i + 1) for i, track in enumerate(distinct, start=1) if track in g)
    idcg = sum(1 / math.log2(i + 1) for i in range(1, min(len(g), 500) + 1))
    return dcg / idcg


def published_clicks(truth: list, recs: list) -> float:
    g = set(truth)
    for i, track in enumerate(recs[:500]):
        if track in g:
            return float(i // 10)
    return 51.0


def published_recall(truth: list, recs: list) -> float:
    g = set(truth)
    return len(set(recs[:500]) & g) / len(g)


def check_against_published(truths: list[list[int]], rec_lists: list[list[int]]) -> None:
    """Score the lists vectorised (short lists padded with -1) and compare every row with the formulas."""
    width = max(1, max(len(r) for r in rec_lists))
    recs = np.full((len(rec_lists), width), -1, dtype=np.int64)
    for i, r in enumerate(rec_lists):
        recs[i, : len(r)] = r
    m = compute_metrics(recs, *csr(truths))
    for i, (truth, r) in enumerate(zip(truths, rec_lists)):
        where = f"playlist {i}: G={truth[:20]}..., R={r[:20]}..."
        assert m["r_precision"][i] == pytest.approx(published_r_precision(truth, r), abs=1e-12), where
        assert m["ndcg"][i] == pytest.approx(published_ndcg(truth, r), abs=1e-12), where
        assert m["clicks"][i] == published_clicks(truth, r), where
        assert m["recall_500"][i] == pytest.approx(published_recall(truth, r), abs=1e-12), where


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 30), min_size=1, max_size=40),  # G, repeats allowed
                          st.lists(st.integers(0, 30), max_size=40)),  # R: repeats, short or empty lists
                min_size=1, max_size=6))
def test_vectorised_metrics_equal_the_published_formulas(playlists):
    check_against_published([g for g, _ in playlists], [r for _, r in playlists])


def test_published_formulas_at_challenge_size():
    # |G| up to 700 (> 500), lists up to 520 long (beyond 500), repeats, some hits planted, some rows empty.
    rng = np.random.default_rng(11)
    truths, rec_lists = [], []
    for _ in range(120):
        truth = rng.integers(0, 3000, size=int(rng.integers(1, 700))).tolist()
        recs = rng.integers(0, 3000, size=int(rng.integers(0, 521))).tolist()
        for slot in rng.integers(0, max(1, len(recs)), size=min(len(recs), int(rng.integers(0, 300)))):
            recs[slot] = truth[int(rng.integers(0, len(truth)))]
        truths.append(truth)
        rec_lists.append(recs)
    assert any(len(set(t)) > 500 for t in truths) and any(len(r) > 500 for r in rec_lists)
    check_against_published(truths, rec_lists)


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.random(500), rng.integers(0, 52, 500).astype(float)])
    values[::7, 1] = np.nan
    ci = bootstrap_ci(values)
    assert np.array_equal(ci, bootstrap_ci(values))
    for j in range(2):
        mean = np.nanmean(values[:, j])
        assert ci[j, 0] < mean < ci[j, 1]
    assert ci[0, 1] - ci[0, 0] < 0.1


def test_summarise_per_category_and_overall():
    m = score([[1], [2], [3], [9]], [[1], [1], [3], [3]])
    out = summarise(m, np.array([1, 1, 2, 2]))
    assert out["overall"]["r_precision"] == pytest.approx(0.5) and out["overall"]["n"] == 4
    assert out["per_category"]["1"]["r_precision"] == pytest.approx(0.5)
    assert out["per_category"]["2"]["clicks"] == pytest.approx(25.5)
    lo, hi = out["ci95"]["r_precision"]
    assert 0 <= lo <= 0.5 <= hi <= 1
    assert out["ci95"]["r_precision_artist"] is None and out["overall"]["r_precision_artist"] is None


def test_paired_difference_cancels_what_both_models_share():
    """Two models whose per-playlist scores differ by a small constant over widely varying playlists: the
    paired CI is tight around the constant (the unpaired CIs would overlap); NaN playlists are left out."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 400)
    better = base + 0.01
    base[3] = np.nan
    diff = paired_difference({"ndcg": base, "r_precision": base}, {"ndcg": better, "r_precision": base})
    assert diff["ndcg"]["n"] == 399
    assert diff["ndcg"]["diff"] == pytest.approx(0.01)
    assert diff["ndcg"]["ci95"] == pytest.approx([0.01, 0.01])
    assert diff["ndcg"]["relative"] == pytest.approx(0.01 / np.nanmean(base))
    assert diff["r_precision"]["diff"] == 0 and "clicks" not in diff
    with pytest.raises(ValueError, match="same split"):
        paired_difference({"ndcg": base}, {"ndcg": base[:10]})
