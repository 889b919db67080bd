"""The model interface's shared machinery: seed normalisation, top-k, config overrides."""

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from segue.config import apply_overrides
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
