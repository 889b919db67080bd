"""Neural models under torchrun: two CPU processes (gloo) stay in sync and the loss falls (dense and sparse updates)."""

import numpy as np
import pytest
import torch
from conftest import MEANVAR_FAST, SEQUENTIAL_FAST, make_playlists

from segue.data.store import build_store
from segue.errors import InputError
from segue.models.base import get_model_class
from segue.models.neural.adapter import WEIGHTS_FILE

CASES = {
    "meanvar-full": ("meanvar", MEANVAR_FAST),
    "meanvar-sampled-sparse": ("meanvar", {**MEANVAR_FAST, "full_softmax_max": 10, "negatives": 64}),
    "sequential-sampled-sparse": ("sequential", {**SEQUENTIAL_FAST, "full_softmax_max": 10, "negatives": 64}),
}


@pytest.mark.slow  # two torchrun processes; in the default run and CI (deselect locally with -m "not slow")
@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_stay_in_sync_and_learn(tmp_path, case):
    name, settings = CASES[case]
    cls = get_model_class(name)
    store = build_store(make_playlists(n=200), tmp_path / "store")
    out = tmp_path / "model"
    model = cls.train_distributed(store.path, out, cls.Config(**{**settings, "device": "cpu"}), nproc=2, timeout=300)
    info = model.fit_info
    assert info["world_size"] == 2
    assert info["updates"] == ("sparse rows" if "sparse" in case else "dense")
    hashes = info["rank_param_sha256"]
    assert len(hashes) == 2 and hashes[0] == hashes[1]
    history = info["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (out / WEIGHTS_FILE).is_file() and (out / "config.json").is_file()
    ids, _ = model.recommend([store.playlist_tracks(0)[:5]], k=10)
    assert (ids >= 0).all() and len(np.unique(ids)) == 10


def test_more_processes_than_gpus_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    store = build_store(make_playlists(n=20), tmp_path / "store")
    cls = get_model_class("meanvar")
    with pytest.raises(InputError, match="nproc=2 but 1 CUDA device"):
        cls.train_distributed(store.path, tmp_path / "model", cls.Config(**{**MEANVAR_FAST, "device": "cuda"}), nproc=2)
    assert not (tmp_path / "model").exists()
