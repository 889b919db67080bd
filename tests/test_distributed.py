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


def _average_on_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    from segue.models.neural.sparse_grads import SparseGradientSync

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(rank)  # different starts: the sync must broadcast rank 0's tables
        net = torch.nn.ModuleDict({"songs": torch.nn.Embedding(6, 3, sparse=True),
                                   "titles": torch.nn.EmbeddingBag(4, 3, mode="mean", sparse=True),
                                   "layer": torch.nn.Linear(3, 1)})
        sync = SparseGradientSync(net)
        # rank 0 touches songs 1, 1 and 4 and no title; rank 1 touches song 4 and title 2
        songs = torch.tensor([1, 1, 4]) if rank == 0 else torch.tensor([4])
        loss = (net["songs"](songs) * torch.tensor([1.0, 2.0, 3.0])).sum()
        if rank == 1:
            loss = loss + net["titles"](torch.tensor([2]), torch.tensor([0])).sum() * 5
        loss.backward()
        sync.average()
        grads = {name: (p.grad.to_dense() if p.grad is not None else torch.zeros_like(p)).numpy()
                 for name, p in net.named_parameters() if not name.startswith("layer.")}
        weights = {name: p.detach().numpy() for name, p in net.named_parameters()}
        np.savez(f"{out_dir}/rank{rank}.npz", **{f"grad/{k}": v for k, v in grads.items()},
                 **{f"weight/{k}": v for k, v in weights.items()})
    finally:
        dist.destroy_process_group()


def test_sparse_gradients_are_averaged_over_ranks_even_where_a_rank_touched_no_row(tmp_path):
    import torch.multiprocessing as mp

    from segue.models.neural.sparse_grads import sparse_parameter_names

    mp.spawn(_average_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [np.load(tmp_path / f"rank{r}.npz", allow_pickle=False) for r in range(2)]
    expected_songs = np.zeros((6, 3), dtype=np.float32)
    expected_songs[1] = 2 * np.array([1.0, 2.0, 3.0]) / 2   # rank 0 twice, averaged over 2 ranks
    expected_songs[4] = 2 * np.array([1.0, 2.0, 3.0]) / 2   # once on each rank
    expected_titles = np.zeros((4, 3), dtype=np.float32)
    expected_titles[2] = 5.0 / 2                            # rank 1 only
    for r in ranks:
        np.testing.assert_allclose(r["grad/songs.weight"], expected_songs)
        np.testing.assert_allclose(r["grad/titles.weight"], expected_titles)
    for key in ranks[0].files:  # the tables start from rank 0's, the gradients agree bit for bit
        if key.startswith(("weight/songs", "weight/titles", "grad/")):
            np.testing.assert_array_equal(ranks[0][key], ranks[1][key])
    net = torch.nn.ModuleDict({"a": torch.nn.Embedding(2, 2, sparse=True), "b": torch.nn.Embedding(2, 2)})
    assert sparse_parameter_names(net) == ["a.weight"]
