"""Challenge metrics: hand-computed cases, the vectorised code against the plain loop, bootstrap CIs."""

import math

import numpy as np
import pytest

from segue.evaluate.metrics import (
    METRICS,
    bootstrap_ci,
    compute_metrics,
    first_occurrence,
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


def test_duplicates_and_padding_count_once_and_keep_their_slots():
    # G = {1, 2, 3}; R = 1, 9, 2, 2(dup), -1, 3: hits at ranks 1, 3, 6.
    m = score([[1, 9, 2, 2, -1, 3]], [[1, 2, 3]])
    assert m["r_precision"][0] == pytest.approx(2 / 3)
    assert m["recall_500"][0] == pytest.approx(1.0)
    dcg = 1 + 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg"][0] == pytest.approx(dcg / idcg)
    std_dcg = 1 / math.log2(2) + 1 / math.log2(4) + 1 / math.log2(7)
    std_idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg_500"][0] == pytest.approx(std_dcg / std_idcg)
    assert m["clicks"][0] == 0


def test_a_duplicated_hit_inside_the_window_counts_once():
    m = score([[1, 1, 1]], [[1, 2, 3]])
    assert m["r_precision"][0] == pytest.approx(1 / 3)
    assert m["ndcg"][0] == pytest.approx(1.0)  # one hit at rank 1: DCG = IDCG = 1


def test_repeated_ground_truth_is_a_set():
    m = score([[7, 8]], [[7, 7, 8]])
    assert m["r_precision"][0] == 1.0 and m["recall_500"][0] == 1.0


def test_fewer_recommendations_than_ground_truth():
    m = score([[4]], [[1, 2, 3, 4]], k=6)
    assert m["r_precision"][0] == pytest.approx(0.25)
    assert m["recall_500"][0] == pytest.approx(0.25)
    assert m["ndcg"][0] == pytest.approx(1.0)
    assert m["ndcg_500"][0] == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5 + 1 / math.log2(5)))


def test_nothing_relevant_gives_51_clicks_and_zero_ndcg():
    m = score([[5, 6, 7]], [[1, 2]])
    assert m["clicks"][0] == 51
    assert m["ndcg"][0] == 0 and m["ndcg_500"][0] == 0 and m["r_precision"][0] == 0
    empty = score([[-1, -1]], [[1]])
    assert empty["clicks"][0] == 51 and empty["ndcg"][0] == 0


@pytest.mark.parametrize(("rank", "clicks"), [(1, 0), (10, 0), (11, 1), (20, 1), (21, 2), (500, 49)])
def test_clicks_count_pages_of_ten_before_the_first_hit(rank, clicks):
    row = list(range(1000, 1000 + 500))
    row[rank - 1] = 1
    m = score([row], [[1]])
    assert m["clicks"][0] == clicks


def test_challenge_ndcg_uses_the_rank_one_special_case():
    # One hit at rank 2: DCG = 1/log2(2) = 1, IDCG for one hit = 1 -> NDCG 1 (the challenge formula).
    m = score([[9, 1]], [[1, 2]])
    assert m["ndcg"][0] == pytest.approx(1.0)
    assert m["ndcg_500"][0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


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
