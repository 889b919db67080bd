"""The sequential model: causal, the same playlist vector in training and at inference, deterministic on CPU,
safetensors on disk. (The shared model suite, tests/test_models.py, runs it too; DDP: tests/test_distributed.py.)"""

import numpy as np
import pytest
import torch
from conftest import SEQUENTIAL_FAST

from segue.errors import InputError
from segue.models.base import load_model
from segue.models.neural.adapter import WEIGHTS_FILE
from segue.models.neural.sequential import Sequential, SequentialConfig
from segue.models.neural.sequential_net import SequentialNet
from segue.models.neural.training import param_hash


@pytest.fixture(scope="module")
def fitted(meanvar_store):
    return Sequential(SequentialConfig(**SEQUENTIAL_FAST)).fit(meanvar_store)


def small_net(**overrides) -> SequentialNet:
    torch.manual_seed(0)
    config = SequentialConfig(**{"dim": 8, "heads": 2, "max_len": 6, "dropout": 0.0, "title_buckets": 64,
                                 "item_features": "track", **overrides})
    return SequentialNet(config, n_tracks=30).eval()


def test_outputs_do_not_see_later_songs():
    net = small_net()
    first = net.start.detach().expand(2, -1)
    songs = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 9, 9]])
    with torch.no_grad():
        h = net._decode(first, songs, None)
    assert torch.allclose(h[0, :4], h[1, :4], atol=1e-6)  # positions 0..3 read songs 1, 2, 3 only
    assert not torch.allclose(h[0, 4], h[1, 4])


def test_inference_vector_is_the_training_output_after_the_seeds():
    net = small_net(title_buckets=64)
    songs = np.array([3, 7, 1, 12, 5])
    title = (np.array([0, 3]), np.array([4, 9, 17]))
    batch = {"songs": torch.from_numpy(songs[None]), "targets": torch.from_numpy(songs[None]),
             "title_offsets": torch.tensor(title[0]), "title_ids": torch.tensor(title[1])}
    with torch.no_grad():
        h, targets = net.train_outputs(batch)                                  # (5, dim): after 0..4 songs
        for k in range(5):
            v = net.playlist_vectors(np.array([0, k]), songs[:k].astype(np.int32), *title)
            assert torch.allclose(v[0], h[k], atol=1e-5)
    assert targets.tolist() == songs.tolist()


def test_only_the_last_seeds_are_read():
    net = small_net()
    seeds = np.arange(1, 13, dtype=np.int32)  # 12 seeds, max_len 6: the last 5 are read
    empty = (np.array([0, 0]), np.zeros(0, np.int64))
    with torch.no_grad():
        long = net.playlist_vectors(np.array([0, 12]), seeds, *empty)
        tail = net.playlist_vectors(np.array([0, 5]), seeds[-5:], *empty)
    assert torch.allclose(long, tail, atol=1e-6)


def test_training_is_deterministic_on_cpu(meanvar_store):
    config = SequentialConfig(**{**SEQUENTIAL_FAST, "rounds": 1, "device": "cpu"})
    assert param_hash(Sequential(config).fit(meanvar_store).net) == param_hash(Sequential(config).fit(meanvar_store).net)


def test_saved_as_safetensors_and_reloaded_identically(fitted, meanvar_store, tmp_path):
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / WEIGHTS_FILE).is_file()
    assert not list((tmp_path / "m").glob("*.pt")) and not list((tmp_path / "m").glob("*.pkl"))
    again = load_model(tmp_path / "m", store=meanvar_store)
    seeds = [meanvar_store.playlist_tracks(r)[:n] for r, n in ((0, 1), (1, 5), (2, 30))]
    a, sa = fitted.recommend(seeds, k=20, titles=["My Country Mix", None, "rock"])
    b, sb = again.recommend(seeds, k=20, titles=["My Country Mix", None, "rock"])
    assert a.tolist() == b.tolist() and np.array_equal(sa, sb)


def test_title_changes_the_recommendations(fitted, meanvar_store):
    seeds = [meanvar_store.playlist_tracks(0)[:1]] * 2
    _, scores = fitted.recommend(seeds, k=10, titles=["My Country Mix", "My Christmas Mix"])
    assert not np.allclose(scores[0], scores[1])


@pytest.mark.parametrize("bad", [dict(dim=30, heads=4), dict(layers=0), dict(max_len=0), dict(shuffle=1.5)])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(InputError):
        SequentialConfig(**bad)
