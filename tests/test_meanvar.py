"""The seed's model (meanvar): data regimes as arrays, the network, training, persistence."""

import numpy as np
import pytest
import torch
from conftest import MEANVAR_FAST as FAST
from conftest import make_playlists

from segue.data.store import build_store
from segue.errors import InputError, ModelError
from segue.models.base import load_model
from segue.models.neural.config import full_softmax_limit
from segue.models.neural.meanvar import WEIGHTS_FILE, MeanVar
from segue.models.neural.examples import Pairs, Sequences, collate_pairs, prefix_pairs, seed_pairs
from segue.models.neural.meanvar_net import MeanVarConfig, MeanVarNet, seed_tensors
from segue.models.neural.training import LogUniformSampler, RowAdamW, make_optimizer, param_hash, train_step

@pytest.fixture(scope="module")
def store(meanvar_store):
    return meanvar_store


@pytest.fixture(scope="module")
def fitted(trained_meanvar):
    return trained_meanvar[0]


def genre_of(store, ids):
    return [info["track_name"].split()[0] if info else None for info in store.track_info(ids)]


# ---- data regimes -------------------------------------------------------------------------------------
def test_seed_pairs_are_songs_1_to_20_with_targets_21_to_30():
    lengths = np.array([35, 12, 30])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.arange(indptr[-1], dtype=np.int32)
    pairs = seed_pairs(indptr, indices, np.arange(3), training_sets=10)
    assert len(pairs) == 20  # the 12-song playlist is dropped
    assert (pairs.length == 20).all()
    assert pairs.start[:10].tolist() == [0] * 10 and pairs.start[10:].tolist() == [47] * 10
    assert pairs.target[:10].tolist() == list(range(20, 30))
    assert pairs.target[10:].tolist() == list(range(67, 77))
    assert pairs.row.tolist() == [0] * 10 + [2] * 10
    assert len(seed_pairs(indptr, indices, np.arange(3), training_sets=3)) == 6


@pytest.mark.parametrize("target", ["later", "next"])
def test_prefix_pairs_take_a_prefix_and_a_following_song(target):
    lengths = np.array([2, 7, 100, 1])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.arange(indptr[-1], dtype=np.int32)
    config = MeanVarConfig(max_seeds=10, pairs_per_playlist=50, target=target)
    pairs = prefix_pairs(indptr, indices, np.arange(4), config, np.random.default_rng(0))
    assert len(pairs) == 150  # the one-song playlist gives none
    row = np.searchsorted(indptr, pairs.start, side="right") - 1
    assert (pairs.start == indptr[row]).all()
    assert (pairs.length >= 1).all() and (pairs.length <= np.minimum(lengths[row] - 1, 10)).all()
    position = pairs.target - pairs.start  # indices are positions here
    assert (position >= pairs.length).all() and (position < lengths[row]).all()
    if target == "next":
        assert (position == pairs.length).all()
    else:
        assert (position > pairs.length).any()


def test_collate_builds_csr_segments_and_titles():
    seqs = Sequences(np.array([0, 10, 20]), np.arange(100, 120, dtype=np.int32), np.array([4, 7]))
    titles = (np.array([0, 0, 0, 0, 0, 2, 2, 2, 5]), np.array([11, 12, 13, 14, 15]))  # store rows 4 and 7
    batch = collate_pairs(seqs, Pairs(np.array([2, 10]), np.array([3, 1]), np.array([7, 9]), np.array([0, 1])),
                          titles, "cpu")
    assert batch["tokens"].tolist() == [102, 103, 104, 110]
    assert batch["segments"].tolist() == [0, 0, 0, 1]
    assert batch["counts"].tolist() == [3, 1] and batch["targets"].tolist() == [7, 9]
    assert batch["title_offsets"].tolist() == [0, 2, 5] and batch["title_ids"].tolist() == [11, 12, 13, 14, 15]


# ---- the network ---------------------------------------------------------------------------------------
def test_encode_matches_a_direct_mean_and_variance():
    torch.manual_seed(0)
    config = MeanVarConfig(dim=8, hidden=16, dropout=0.0, item_features="track", title=False)
    net = MeanVarNet(config, n_tracks=30).eval()
    seeds = [np.array([1, 2, 5]), np.array([7]), np.array([3, 3, 9, 11])]
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in seeds])])
    with torch.no_grad():
        h = net.encode(*seed_tensors(indptr, np.concatenate(seeds)))
        for row, s in enumerate(seeds):
            x = net.items.track_emb.weight[torch.as_tensor(s)]
            mean = x.mean(0, keepdim=True)
            var = x.var(0, unbiased=False, keepdim=True)
            expect = net.mean_mlp(mean) + net.var_mlp(var) + mean
            assert torch.allclose(h[row], expect[0], atol=1e-5)
        # one seed: variance 0
        x = net.items.track_emb.weight[7:8]
        assert torch.allclose(h[1], (net.mean_mlp(x) + net.var_mlp(torch.zeros_like(x)) + x)[0], atol=1e-5)


def test_one_mlp_variant_and_separate_head_have_the_expected_parameters():
    net = MeanVarNet(MeanVarConfig(variance=False, tied=False, item_features="track"), n_tracks=10)
    names = set(net.state_dict())
    assert not any(n.startswith("var_mlp") for n in names)
    assert "out_emb.weight" in names and "items.bias_emb.weight" in names
    tied = MeanVarNet(MeanVarConfig(item_features="track"), n_tracks=10)
    assert "out_emb.weight" not in {n for n, _ in tied.named_parameters()}


def test_log_uniform_sampler_probabilities_sum_to_one_and_favour_popular_songs():
    counts = np.array([5, 100, 1, 50])
    sampler = LogUniformSampler(counts, "cpu", seed=0)
    assert abs(float(sampler.log_q.exp().sum()) - 1.0) < 1e-5
    draws = np.bincount(sampler.sample(20000).numpy(), minlength=4)
    assert draws[1] > draws[3] > draws[0] > draws[2]


# ---- sparse row updates -------------------------------------------------------------------------------------
def test_row_adamw_equals_adamw_when_every_row_is_touched_and_skips_untouched_rows():
    torch.manual_seed(0)
    dense = torch.nn.Embedding(6, 3)
    sparse = torch.nn.Embedding(6, 3, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    opt_d = torch.optim.AdamW(dense.parameters(), lr=0.1, weight_decay=0.01)
    opt_s = RowAdamW(sparse.parameters(), lr=0.1, weight_decay=0.01)
    for step in range(4):
        ids = torch.tensor([0, 1, 2, 3, 4, 5, 2, 2])  # all rows, duplicates summed
        scale = torch.arange(8.0).unsqueeze(1) + step
        for emb, opt in ((dense, opt_d), (sparse, opt_s)):
            opt.zero_grad()
            (emb(ids) * scale).sum().backward()
            opt.step()
    assert torch.allclose(dense.weight, sparse.weight, atol=1e-6)
    before = sparse.weight.detach().clone()
    moments = opt_s.state[sparse.weight]["exp_avg"].clone()
    opt_s.zero_grad()
    sparse(torch.tensor([1, 4])).sum().backward()
    opt_s.step()
    changed = (sparse.weight != before).any(1)
    assert changed.tolist() == [False, True, False, False, True, False]
    assert torch.equal(opt_s.state[sparse.weight]["exp_avg"][[0, 2, 3, 5]], moments[[0, 2, 3, 5]])


def test_sampled_step_touches_only_the_batch_rows(store):
    config = MeanVarConfig(**{**FAST, "full_softmax_max": 10, "negatives": 8})
    net = MeanVarNet(config, store.n_tracks, store.track_album, store.track_artist, store.n_albums,
                     store.n_artists).set_sparse(True)
    optimizer = make_optimizer(net, config, sparse=True)
    sampler = LogUniformSampler(store.track_count, "cpu", seed=0)
    seqs = Sequences(store.indptr, store.indices, np.arange(store.n_playlists))
    titles = (np.zeros(store.n_playlists + 1, np.int64), np.zeros(0, np.int64))
    batch = collate_pairs(seqs, Pairs(np.array([0, 40]), np.array([3, 2]), np.array([40, 41]), np.array([0, 1])),
                          titles, "cpu")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train_step(net, optimizer, batch, config, sampler)
    assert net.items.track_emb.weight.grad is None or net.items.track_emb.weight.grad.is_sparse
    generator = torch.Generator().manual_seed(0)  # replay the sampler's negatives
    u = torch.rand(8, generator=generator, dtype=torch.float64)
    rank = (torch.exp(u * np.log(sampler.n + 1.0)) - 1.0).long().clamp_(0, sampler.n - 1)
    touched = set(batch["tokens"].tolist()) | set(batch["targets"].tolist()) | set(sampler.order[rank].tolist())
    changed = (net.items.track_emb.weight != before["items.track_emb.weight"]).any(1).nonzero()[:, 0].tolist()
    assert changed and set(changed) <= touched
    bias_changed = (net.items.bias_emb.weight[:, 0] != before["items.bias_emb.weight"][:, 0]).nonzero()[:, 0].tolist()
    assert bias_changed and set(bias_changed) <= touched
    assert not torch.equal(net.mean_mlp[0].weight, before["mean_mlp.0.weight"])  # dense part still learns


def test_sparse_and_dense_updates_learn_alike(store):
    scores = {}
    for sparse in (True, False):
        model = MeanVar(MeanVarConfig(**{**FAST, "full_softmax_max": 10, "negatives": 64, "sparse": sparse})).fit(store)
        assert model.fit_info["updates"] == ("sparse rows" if sparse else "dense")
        scores[sparse] = max(r["val_r_precision"] for r in model.fit_info["history"])
    assert scores[True] > scores[False] - 0.05 and scores[True] > 0.5


# ---- training and recommending ----------------------------------------------------------------------------
def test_fit_loss_falls_and_recommends_in_genre(store, fitted):
    history = fitted.fit_info["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(0 < r["val_r_precision"] <= 1 for r in history)
    country = [r for r in range(store.n_playlists) if store.names[r].startswith("My Country")][:10]
    seeds = [store.playlist_tracks(r)[:5] for r in country]
    ids, scores = fitted.recommend(seeds, k=10)
    assert ids.shape == (10, 10) and scores.dtype == np.float32
    share = np.mean([g == "country" for g in genre_of(store, ids.ravel())])
    assert share > 0.7
    for row, s in zip(ids, seeds):
        assert not set(row.tolist()) & set(s.tolist())


def test_any_number_of_seeds_and_batch_equals_single(fitted, store):
    seeds = [store.playlist_tracks(3)[:n] for n in (1, 2, 7, 20)]
    ids, scores = fitted.recommend(seeds, k=5)
    for row, s in enumerate(seeds):
        one_ids, one_scores = fitted.recommend([s], k=5)
        assert one_ids[0].tolist() == ids[row].tolist()
        assert np.allclose(one_scores[0], scores[row], atol=1e-5)


def test_zero_seeds_fall_back_to_the_title_model(fitted):
    ids, scores = fitted.recommend([np.array([], np.int32)], k=5, titles=["christmas"])
    assert (ids >= 0).all() and np.isfinite(scores).all()


def test_confidence_is_a_probability(fitted, store):
    seeds = store.playlist_tracks(0)[:5]
    ids, _ = fitted.recommend([seeds], k=15)
    conf = fitted.confidence(seeds, ids[0])
    assert (conf > 0).all() and conf.sum() <= 1.0 + 1e-6
    assert (np.diff(conf) <= 1e-7).all()


def test_save_load_roundtrip_is_safetensors_and_identical(fitted, store, tmp_path):
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / WEIGHTS_FILE).is_file()
    assert not list((tmp_path / "m").glob("*.pt")) and not list((tmp_path / "m").glob("*.pkl"))
    again = load_model(tmp_path / "m", store=store)
    seeds = [store.playlist_tracks(r)[:4] for r in range(6)]
    a, sa = fitted.recommend(seeds, k=20)
    b, sb = again.recommend(seeds, k=20)
    assert a.tolist() == b.tolist() and np.allclose(sa, sb)


@pytest.mark.parametrize("overrides", [{}, dict(full_softmax_max=10, negatives=64)])
def test_training_is_deterministic_on_cpu(store, overrides):
    # CUDA kernels (atomic adds in the embedding backward) are not bit-reproducible; the CPU path is
    config = MeanVarConfig(**{**FAST, "rounds": 1, "device": "cpu", **overrides})
    assert param_hash(MeanVar(config).fit(store).net) == param_hash(MeanVar(config).fit(store).net)


@pytest.mark.parametrize("overrides", [
    dict(data="seed", training_sets=10),
    dict(full_softmax_max=10, negatives=64),
    dict(item_features="track", tied=False, variance=False, residual=False),
    dict(init="normal", title=False, item_features="track"),
    dict(shuffle=1.0, target="next", pairs_per_playlist=3),
])
def test_options_train_and_loss_falls(store, overrides):
    model = MeanVar(MeanVarConfig(**{**FAST, **overrides})).fit(store)
    history = model.fit_info["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    ids, _ = model.recommend([store.playlist_tracks(0)[:3]], k=5)
    assert (ids >= 0).all()
    if "full_softmax_max" in overrides:
        assert model.fit_info["softmax"] == "sampled" and model.fit_info["updates"] == "sparse rows"


def test_early_stopping_restores_the_best_round(store):
    model = MeanVar(MeanVarConfig(**{**FAST, "rounds": 30, "patience": 1, "lr": 0.05})).fit(store)
    history = model.fit_info["history"]
    assert len(history) < 30
    best = max(history, key=lambda r: r["val_r_precision"])["round"]
    assert model.fit_info["best_round"] == best


@pytest.mark.parametrize("overrides", [{}, dict(full_softmax_max=10, negatives=64)], ids=["full", "sampled"])
def test_a_diverging_run_is_a_clear_error_and_saves_nothing(store, overrides):
    # lr=1e6 runs away: the full softmax to finite losses of ~1e33, the sampled one to NaN
    model = MeanVar(MeanVarConfig(**{**FAST, "rounds": 2, "lr": 1e6, **overrides}))
    with pytest.raises(ModelError, match="lower the learning rate"):
        model.fit(store)
    assert model.net is None


def test_non_finite_weights_are_never_saved(fitted, store, tmp_path):
    broken = MeanVar(fitted.config)
    broken.n_tracks, broken.store_info = fitted.n_tracks, fitted.store_info
    broken.net = MeanVarNet(fitted.config, store.n_tracks, store.track_album, store.track_artist, store.n_albums,
                            store.n_artists)
    with torch.no_grad():
        broken.net.mean_mlp[0].weight[0, 0] = float("nan")
    with pytest.raises(ModelError, match="non-finite"):
        broken.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_files_limits_the_playlists(store):
    model = MeanVar(MeanVarConfig(**{**FAST, "rounds": 1, "files": 1, "holdout": 0.0})).fit(store)
    assert model.fit_info["train_playlists"] == store.n_playlists  # fewer than 1000 playlists: all of them
    assert model.fit_info["holdout_playlists"] == 0


def test_seed_data_needs_playlists_of_30_songs(tmp_path):
    short = build_store(make_playlists(n=20, max_len=25), tmp_path / "short")
    with pytest.raises(InputError, match="at least 30 songs"):
        MeanVar(MeanVarConfig(**{**FAST, "data": "seed"})).fit(short)


def test_checkpoint_is_written_each_round(store, tmp_path):
    MeanVar(MeanVarConfig(**{**FAST, "rounds": 2, "checkpoint_dir": str(tmp_path / "ck")})).fit(store)
    assert (tmp_path / "ck" / "last.safetensors").is_file() and (tmp_path / "ck" / "last.json").is_file()


@pytest.mark.parametrize("bad", [dict(data="nope"), dict(dim=0), dict(training_sets=11), dict(device="tpu"),
                                 dict(item_features="track+genre"), dict(full_softmax_max=-2)])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(InputError):
        MeanVarConfig(**bad)


def test_full_softmax_limit_is_by_device_unless_set():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert full_softmax_limit(MeanVarConfig(), cpu) == 50_000
    assert full_softmax_limit(MeanVarConfig(), cuda) == 4_000_000  # a full-MPD softmax fits a GPU step
    assert full_softmax_limit(MeanVarConfig(full_softmax_max=10), cuda) == 10
    assert full_softmax_limit(MeanVarConfig(full_softmax_max=0), cpu) == 0
