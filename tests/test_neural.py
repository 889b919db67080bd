"""The shared neural machinery: training examples, title features, the ALS warm start, held-out R-precision,
the data-sized budget, and both neural models beating popularity on sparse data."""

import numpy as np
import pytest
import torch
from conftest import MEANVAR_FAST, SEQUENTIAL_FAST, make_playlists

from segue.data.store import build_store
from segue.models.base import get_model_class
from segue.models.neural.examples import (
    HOLDOUT_SEEDS,
    Sequences,
    Windows,
    collate_windows,
    holdout_queries,
    round_sequences,
    window_examples,
)
from segue.models.neural.layers import ItemEmbeddings, title_tokens
from segue.models.neural.training import r_precision_sums, store_titles

def csr(lists):
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    return indptr, np.concatenate(lists).astype(np.int32)


# ---- examples -------------------------------------------------------------------------------------------
def test_round_sequences_shuffle_a_share_of_playlists_and_keep_their_songs():
    lists = [np.arange(100 * r, 100 * r + 30) for r in range(40)]
    indptr, indices = csr(lists)
    rows = np.arange(5, 40)
    same = round_sequences(indptr, indices, rows, 0.0, np.random.default_rng(0))
    assert same.rows.tolist() == rows.tolist()
    assert all((same.indices[same.indptr[i]:same.indptr[i + 1]] == lists[r]).all() for i, r in enumerate(rows))
    mixed = round_sequences(indptr, indices, rows, 0.5, np.random.default_rng(0))
    moved = 0
    for i, r in enumerate(rows):
        songs = mixed.indices[mixed.indptr[i]:mixed.indptr[i + 1]]
        assert sorted(songs.tolist()) == lists[r].tolist()
        moved += not (songs == lists[r]).all()
    assert 5 < moved < 30


def test_holdout_queries_are_challenge_like():
    rng = np.random.default_rng(3)
    lists = [rng.choice(1000, size=n, replace=False) for n in rng.integers(2, 150, size=300)]
    lists[0] = np.array([7, 7, 8, 7, 9])  # repeats: the truth holds each song once, never a seed
    indptr, indices = csr(lists)
    q = holdout_queries(indptr, indices, np.arange(300), np.random.default_rng(0))
    k = np.diff(q.seed_indptr)
    assert set(k.tolist()) <= set(HOLDOUT_SEEDS.tolist())
    first, shuffled = 0, 0
    for i, r in enumerate(q.rows):
        playlist, seeds = lists[r], q.seed_indices[q.seed_indptr[i]:q.seed_indptr[i + 1]]
        truth = q.truth_indices[q.truth_indptr[i]:q.truth_indptr[i + 1]]
        assert k[i] < len(playlist)
        assert len(set(truth.tolist())) == len(truth) and not set(truth.tolist()) & set(seeds.tolist())
        assert set(truth.tolist()) | set(seeds.tolist()) == set(playlist.tolist())
        if (seeds == playlist[: k[i]]).all():
            first += 1
        elif k[i] > 1:
            shuffled += 1
    assert first > 200 and shuffled > 20  # a fifth of the queries take random seeds
    assert q.truth_indices[q.truth_indptr[0]:q.truth_indptr[1]].tolist() == [8, 9]


def test_windows_are_stretches_of_each_playlist_and_targets_follow():
    lists = [np.arange(100, 107), np.arange(200, 203), np.arange(300, 301)]
    indptr, indices = csr(lists)
    seqs = Sequences(indptr, indices, np.arange(3))

    class Config:
        max_len = 3

    starts = set()
    for seed in range(20):
        windows = window_examples(seqs, Config, np.random.default_rng(seed))
        assert windows.row.tolist() == [0, 1, 2] and windows.length.tolist() == [3, 3, 1]
        assert windows.start[1:].tolist() == [7, 10]
        assert 0 <= windows.start[0] <= 4
        starts.add(int(windows.start[0]))
    assert len(starts) == 5  # every stretch of the long playlist
    titles = (np.zeros(4, np.int64), np.zeros(0, np.int64))
    batch = collate_windows(seqs, Windows(np.array([0, 10]), np.array([3, 1]), np.array([0, 2])), titles, "cpu")
    assert batch["songs"].tolist() == [[100, 101, 102], [300, -1, -1]]
    assert batch["targets"].tolist() == batch["songs"].tolist()  # output t predicts song t (input: title, songs < t)
    later = collate_windows(seqs, Windows(np.array([0]), np.array([7]), np.array([0])), titles, "cpu",
                            target="later", rng=np.random.default_rng(0))["targets"][0].numpy()
    assert all(100 + t <= later[t] <= 106 for t in range(7))


def test_title_tokens_hash_normalised_words_and_ngrams():
    offsets, ids = title_tokens(["Country  Mix!", "country mix", None, "", "rock"], 5, 1 << 12)
    rows = [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(5)]
    assert rows[0] == rows[1] and len(rows[0]) > 2
    assert rows[2] == [] and rows[3] == []
    assert rows[4] and set(rows[4]) != set(rows[0])
    again = title_tokens(["rock"], 1, 1 << 12)[1].tolist()
    assert again == rows[4] and all(0 <= i < 1 << 12 for i in ids)


# ---- the ALS warm start ------------------------------------------------------------------------------------
def test_als_warm_start_blends_song_album_and_artist_factors():
    torch.manual_seed(0)
    album, artist = np.array([0, 0, 1, -1]), np.array([0, 0, 0, -1])
    items = ItemEmbeddings(4, 3, album, artist, n_albums=2, n_artists=1)
    factors = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, 0]], np.float32)  # song 3 unseen by ALS
    items.warm_start(factors)
    scale = (1 / np.sqrt(3)) / factors[:3].std(ddof=1)  # torch.std: the unbiased estimate
    album_rows = items.album_emb.weight.detach().numpy()
    np.testing.assert_allclose(album_rows[0], scale * factors[:2].mean(0) / 3, atol=1e-6)
    np.testing.assert_allclose(album_rows[2], 0)  # the unknown-album row stays zero
    np.testing.assert_allclose(items.artist_emb.weight[0].detach().numpy(), scale * factors[:3].mean(0) / 3, atol=1e-6)
    vectors = items.vectors().detach().numpy()
    assert np.argmax(vectors[0]) == 0 and np.argmax(vectors[1]) == 1 and np.argmax(vectors[2]) == 2


# ---- training -------------------------------------------------------------------------------------------
def test_held_out_r_precision_matches_the_recommender(trained_meanvar, meanvar_store):
    model, _ = trained_meanvar
    q = holdout_queries(meanvar_store.indptr, meanvar_store.indices, np.arange(60), np.random.default_rng(0))
    titles = store_titles(meanvar_store, model.config)
    total, count = r_precision_sums(model.net, q, titles)
    expected = []
    for i in range(len(q)):
        truth = set(q.truth_indices[q.truth_indptr[i]:q.truth_indptr[i + 1]].tolist())
        seeds = q.seed_indices[q.seed_indptr[i]:q.seed_indptr[i + 1]]
        ids, _ = model.recommend([seeds], k=len(truth), titles=[meanvar_store.names[q.rows[i]]])
        expected.append(len(set(ids[0].tolist()) & truth) / len(truth))
    assert count == len(q)
    assert abs(total / count - np.mean(expected)) < 0.02  # equal up to ties at the cut


def test_a_small_store_still_gets_min_steps_batches_per_round(meanvar_store):
    cls = get_model_class("meanvar")
    model = cls(cls.Config(**{**MEANVAR_FAST, "rounds": 1, "min_steps": 50, "batch_size": 256})).fit(meanvar_store)
    assert model.fit_info["history"][0]["steps"] >= 50
    old = cls(cls.Config(**{**MEANVAR_FAST, "rounds": 1, "min_steps": 0, "pairs_per_playlist": 5,
                            "batch_size": 256})).fit(meanvar_store)
    assert old.fit_info["history"][0]["steps"] == len(meanvar_store.pids) * 9 // 10 * 5 // 256


def sparse_split(tmp_path):
    """A sparse genre store (each song in ~3 playlists) and 40 held-out playlists: (store, seeds, truth)."""
    playlists = make_playlists(n=440, seed=5, tracks_per_genre=300, min_len=10, max_len=20)
    store = build_store(playlists[:400], tmp_path / "sparse")
    seeds, truth = [], []
    for p in playlists[400:]:
        ids = store.track_ids([t["track_uri"] for t in p["tracks"]])
        seeds.append(ids[:5][ids[:5] >= 0])
        truth.append(set(ids[5:][ids[5:] >= 0].tolist()))
    return store, seeds, truth


def r_precision(model, seeds, truth) -> float:
    ids, _ = model.recommend(seeds, k=max(len(t) for t in truth))
    return float(np.mean([len(set(row[: len(t)].tolist()) & t) / len(t) for row, t in zip(ids, truth) if t]))


@pytest.mark.parametrize("name", ["meanvar", "sequential"])
def test_neural_models_beat_popular_on_a_tiny_sparse_store(tmp_path, name):
    store, seeds, truth = sparse_split(tmp_path)
    assert np.median(store.track_count) <= 3  # sparse: most songs occur in 1-3 playlists
    popular = get_model_class("popular")().fit(store)
    cls = get_model_class(name)
    fast = MEANVAR_FAST if name == "meanvar" else SEQUENTIAL_FAST
    model = cls(cls.Config(**{**fast, "rounds": 4})).fit(store)
    assert r_precision(model, seeds, truth) > 1.5 * r_precision(popular, seeds, truth)


# ---- hard negatives --------------------------------------------------------------------------------------
def test_top_absent_is_the_best_scoring_songs_outside_each_playlist():
    from segue.models.neural.layers import top_absent

    gen = torch.Generator().manual_seed(0)
    query, vectors = torch.randn(3, 4, generator=gen), torch.randn(50, 4, generator=gen)
    bias = torch.randn(50, generator=gen)
    members = [np.array([3, 7, 11]), np.array([], np.int64), np.arange(40)]
    ptr = torch.tensor(np.concatenate([[0], np.cumsum([len(m) for m in members])]))
    flat = torch.tensor(np.concatenate(members)).long()
    scores = (query @ vectors.T + bias).numpy()
    for block in (1 << 20, 7):  # one block, and blocks of a few songs
        ids, ok = top_absent(query, vectors, bias, ptr, flat, k=5, block_floats=block)
        assert ok.all()
        for row in range(3):
            allowed = np.setdiff1d(np.arange(50), members[row])
            best = allowed[np.argsort(-scores[row, allowed], kind="stable")[:5]]
            assert ids[row].tolist() == best.tolist()
    ids, ok = top_absent(query, vectors, bias, ptr, flat, k=12)  # playlist 2 leaves 10 other songs
    assert ok[:2].all() and ok[2].sum() == 10 and not set(ids[2][ok[2]].tolist()) & set(members[2].tolist())


@pytest.mark.parametrize("name", ["meanvar", "sequential"])
def test_hard_negatives_train_deterministically_and_learn(meanvar_store, name):
    from segue.models.neural.training import param_hash

    cls = get_model_class(name)
    fast = MEANVAR_FAST if name == "meanvar" else SEQUENTIAL_FAST
    config = cls.Config(**{**fast, "rounds": 2, "full_softmax_max": 10, "negatives": 32, "hard_negatives": 8,
                           "device": "cpu"})
    first, second = cls(config).fit(meanvar_store), cls(config).fit(meanvar_store)
    assert param_hash(first.net) == param_hash(second.net)
    assert first.fit_info["softmax"] == "sampled"
    assert max(r["val_r_precision"] for r in first.fit_info["history"]) > 0.3


def test_hard_negatives_enter_the_softmax_once_and_never_from_the_playlist(meanvar_store):
    from segue.models.neural.examples import Pairs, collate_pairs
    from segue.models.neural.meanvar_net import MeanVarConfig, MeanVarNet

    torch.manual_seed(0)
    net = MeanVarNet(MeanVarConfig(dim=8, hidden=8, title=False, dropout=0.0), meanvar_store.n_tracks,
                     meanvar_store.track_album, meanvar_store.track_artist, meanvar_store.n_albums,
                     meanvar_store.n_artists).eval()
    seqs = Sequences(meanvar_store.indptr, meanvar_store.indices, np.arange(meanvar_store.n_playlists))
    titles = (np.zeros(meanvar_store.n_playlists + 1, np.int64), np.zeros(0, np.int64))
    starts = meanvar_store.indptr[[0, 1]]
    pairs = Pairs(starts, np.array([3, 2]), meanvar_store.indices[starts + 3].astype(np.int64), np.array([0, 1]))
    batch = collate_pairs(seqs, pairs, titles, "cpu")
    with torch.no_grad():
        h, _ = net.train_outputs(batch)
        scores = h @ net.items.vectors().T + net.items.bias()
        hard_ids = [np.setdiff1d(np.argsort(-scores[r].numpy(), kind="stable"), meanvar_store.playlist_tracks(r),
                                 assume_unique=True) for r in (0, 1)]
        ranked = [ids[np.argsort(-scores[r, ids].numpy(), kind="stable")][:4] for r, ids in enumerate(hard_ids)]
        negatives = torch.tensor([int(ranked[0][0]), int(meanvar_store.playlist_tracks(0)[0]), 5])
        (pos, neg, hard), targets = net(batch, negatives, hard_negatives=4)
    assert hard.shape == (2, 4)
    assert torch.allclose(hard, torch.stack([scores[r, torch.from_numpy(ranked[r])] for r in (0, 1)]), atol=1e-5)
    for r in (0, 1):  # a sampled negative that is also a row's hard negative counts once (there)
        assert bool(torch.isinf(neg[r, 0])) == (int(negatives[0]) in ranked[r].tolist())
    assert torch.isinf(neg[0, 0]) and torch.isfinite(neg[:, 1:]).all()
