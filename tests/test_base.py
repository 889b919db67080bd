"""The model interface's shared machinery: seed normalisation, top-k, config overrides."""

import re
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from segue.config import apply_overrides, config_from_dict, setting
from segue.errors import InputError, NotFoundError
from segue.models.base import as_seed_csr, get_model_class, top_k


def test_as_seed_csr_accepts_lists_tuples_and_sparse():
    rows = [np.array([3, 1], np.int32), np.array([], np.int32), np.array([0])]
    indptr, indices = as_seed_csr(rows, n_tracks=5)
    assert indptr.tolist() == [0, 2, 2, 3]
    assert indices.tolist() == [3, 1, 0]
    again = as_seed_csr((indptr, indices), n_tracks=5)
    assert [a.tolist() for a in again] == [indptr.tolist(), indices.tolist()]
    matrix = sp.csr_matrix((np.ones(3), [1, 3, 0], [0, 2, 2, 3]), shape=(3, 5))
    ptr, idx = as_seed_csr(matrix, n_tracks=5)
    assert ptr.tolist() == [0, 2, 2, 3] and sorted(idx[:2].tolist()) == [1, 3]


def test_as_seed_csr_rejects_out_of_range_and_malformed():
    with pytest.raises(IndexError, match="playlist 1"):
        as_seed_csr([np.array([0]), np.array([7])], n_tracks=5)
    with pytest.raises(IndexError, match="-1"):
        as_seed_csr([np.array([-1])], n_tracks=5)
    with pytest.raises(InputError, match="indptr"):
        as_seed_csr((np.array([0, 3]), np.array([1, 2])), n_tracks=5)
    with pytest.raises(InputError, match="integer"):
        as_seed_csr([np.array([0.5])], n_tracks=5)


def test_top_k_orders_pads_and_drops_minus_inf():
    scores = np.array([[0.1, 0.9, -np.inf, 0.5], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    ids, top = top_k(scores, 3)
    assert ids.tolist() == [[1, 3, 0], [3, 2, 1]]
    ids, top = top_k(scores, 6)
    assert ids[0].tolist() == [1, 3, 0, -1, -1, -1]
    assert np.isneginf(top[0, 3:]).all()
    assert ids[1, :4].tolist() == [3, 2, 1, 0] and ids[1, 4:].tolist() == [-1, -1]


@dataclass(frozen=True)
class _Cfg:
    factors: int = 8
    alpha: float = 1.0
    name: str = "x"
    bias: bool = True
    limit: int | None = None


def test_apply_overrides_coerces_and_rejects_unknown_keys():
    cfg = apply_overrides(_Cfg(), ["factors=64", "alpha=0.5", "bias=false", "limit=none", "name=y"])
    assert cfg == _Cfg(factors=64, alpha=0.5, name="y", bias=False, limit=None)
    assert apply_overrides(_Cfg(), ["limit=3"]).limit == 3
    with pytest.raises(InputError, match="unknown setting 'factor'.*factors"):
        apply_overrides(_Cfg(), ["factor=3"])
    with pytest.raises(InputError, match="expected an integer"):
        apply_overrides(_Cfg(), ["factors=many"])
    with pytest.raises(InputError, match="key=value"):
        apply_overrides(_Cfg(), ["factors"])


def test_unknown_model_lists_known_ones():
    with pytest.raises(NotFoundError, match="known models: popular"):
        get_model_class("nope")


def test_top_k_breaks_ties_by_id_even_across_the_kth_place():
    ties = np.zeros((2, 9), dtype=np.float32)
    ids, top = top_k(ties, 4)
    assert ids.tolist() == [[0, 1, 2, 3]] * 2 and (top == 0).all()
    # ties at the cut: the lowest ids among the tied scores make it in, whatever argpartition picked
    scores = np.array([[1, 5, 3, 3, 0, 3, 3, 9, 3]], dtype=np.float32)
    for k in range(1, 10):
        expected = sorted(range(9), key=lambda i: (-scores[0, i], i))[:k]
        assert top_k(scores, k)[0][0].tolist() == expected
        flipped = scores[:, ::-1].copy()
        assert top_k(flipped, k)[0][0].tolist() == sorted(range(9), key=lambda i: (-flipped[0, i], i))[:k]


def test_top_k_treats_nan_as_minus_inf():
    scores = np.array([[np.nan, 0.5, np.nan, 0.7, -np.inf]], dtype=np.float32)
    ids, top = top_k(scores, 4)
    assert ids.tolist() == [[3, 1, -1, -1]]
    assert top[0, :2].tolist() == [np.float32(0.7), np.float32(0.5)] and np.isneginf(top[0, 2:]).all()


def test_top_k_matches_a_plain_sort_on_random_tied_blocks():
    rng = np.random.default_rng(0)
    for _ in range(200):
        b, n, k = rng.integers(1, 5), rng.integers(1, 30), int(rng.integers(1, 35))
        scores = rng.integers(-3, 4, size=(b, n)).astype(np.float32)
        scores[rng.random((b, n)) < 0.1] = -np.inf
        scores[rng.random((b, n)) < 0.05] = np.nan
        ids, top = top_k(scores, k)
        for row in range(b):
            clean = np.where(np.isnan(scores[row]), -np.inf, scores[row])
            expected = sorted(np.flatnonzero(np.isfinite(clean)).tolist(), key=lambda i: (-clean[i], i))[:k]
            assert ids[row].tolist() == expected + [-1] * (k - len(expected))
            assert top[row, : len(expected)].tolist() == clean[expected].tolist()


@pytest.mark.parametrize("values", [3, 50, 10_000])
def test_top_k_of_long_rows_cut_at_a_sampled_threshold_equals_the_full_partition(values):
    """Rows long enough for the sampled threshold, with ties (few distinct values), -inf and NaN."""
    from segue.models.base import _top_k_above_sampled_threshold, _top_k_full

    rng = np.random.default_rng(values)
    cut = 0
    for _ in range(60):
        b, k = int(rng.integers(1, 4)), int(rng.integers(1, 12))
        scores = rng.integers(0, values, size=(b, int(rng.integers(40, 60)) * (k + 1))).astype(np.float32)
        scores[rng.random(scores.shape) < 0.3] = -np.inf
        scores[rng.random(scores.shape) < 0.02] = np.nan
        cut += _top_k_above_sampled_threshold(scores, k) is not None
        ids, top = top_k(scores, k)
        full_ids, full_top = _top_k_full(scores, k)
        np.testing.assert_array_equal(ids, full_ids)
        np.testing.assert_array_equal(top, full_top)
    assert cut >= 30  # the cut really ran


@dataclass(frozen=True)
class _Ranged:
    rate: float = setting(0.5, gt=0.0, le=1.0)
    mode: str = setting("a", choices=("a", "b"))
    count: int = setting(3, ge=0)


def test_settings_are_checked_for_type_finiteness_bounds_and_choices():
    assert apply_overrides(_Ranged(), ["rate=1", "mode=b", "count=0"]) == _Ranged(rate=1.0, mode="b", count=0)
    for bad, message in [("rate=0", "setting rate=0.0: must be > 0.0"), ("rate=1.5", "must be <= 1.0"),
                         ("rate=nan", "rate=nan: expected a finite number"), ("mode=c", "expected one of a, b"),
                         ("count=-1", "setting count=-1: must be >= 0"), ("count=1.5", "expected an integer")]:
        with pytest.raises(InputError, match=re.escape(message)):
            apply_overrides(_Ranged(), [bad])
    for bad in ({"count": True}, {"count": "3"}, {"rate": None}, {"mode": 1}):
        with pytest.raises(InputError, match=f"setting {next(iter(bad))}="):
            config_from_dict(_Ranged, bad)
