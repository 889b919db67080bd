"""meanvar under torchrun: two CPU processes (gloo) stay in sync and the loss falls (dense and sparse updates)."""

import numpy as np
import pytest
import torch
from conftest import MEANVAR_FAST as FAST
from conftest import make_playlists

from segue.data.store import build_store
from segue.errors import InputError
from segue.models.neural.meanvar import WEIGHTS_FILE, MeanVar, MeanVarConfig


@pytest.mark.slow  # two torchrun processes; in the default run and CI (deselect locally with -m "not slow")
@pytest.mark.parametrize("overrides", [{}, dict(full_softmax_max=10, negatives=64)], ids=["full", "sampled-sparse"])
def test_two_processes_stay_in_sync_and_learn(tmp_path, overrides):
    store = build_store(make_playlists(n=200), tmp_path / "store")
    out = tmp_path / "model"
    model = MeanVar.train_distributed(store.path, out, MeanVarConfig(**{**FAST, "device": "cpu", **overrides}),
                                      nproc=2, timeout=300)
    info = model.fit_info
    assert info["world_size"] == 2
    assert info["updates"] == ("sparse rows" if overrides else "dense")
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
    with pytest.raises(InputError, match="nproc=2 but 1 CUDA device"):
        MeanVar.train_distributed(store.path, tmp_path / "model", MeanVarConfig(**{**FAST, "device": "cuda"}), nproc=2)
    assert not (tmp_path / "model").exists()
