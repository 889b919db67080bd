"""The two-stage rerank model: its challenge-like ranker split, leakage, batch independence, saving, CLI.

The shared model checks run for rerank in tests/test_models.py (every registered model runs the suite).
"""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import GENRES, N_GENRES, seeds_of_genre, track_uri

from segue.config import apply_overrides
from segue.data.split import FILL_ORDER
from segue.data.store import MANIFEST_FILE, PLAYLISTS_FILE, TRACKS_FILE, Store, build_store
from segue.errors import InputError
from segue.io import read_json, write_json
from segue.models.base import load_model, top_k
from segue.models.rerank import REPORT_JSON, REPORT_PNG, Rerank, RerankConfig
from segue.models.rerank_features import (
    EXPANSION_SEEDS,
    NEIGHBOURS,
    FeatureContext,
    candidate_block,
    feature_names,
    _expansion_similarity,
    make_ranker_split,
    neighbour_evidence,
    neighbour_weights,
)

SMALL = {"candidate_settings": "als.factors=16,als.iterations=8,als.alpha=10,cooccur.neighbors=40",
         "n_candidates": 60, "num_trees": 30, "ranker_fraction": 0.3}
CATEGORY = {c.number: c for c in FILL_ORDER}


@pytest.fixture(scope="module")
def store(genre_store):
    return genre_store


@pytest.fixture(scope="module")
def model(store):
    return Rerank(apply_overrides(RerankConfig(), SMALL)).fit(store)


def long_playlists(n: int = 160, seed: int = 3) -> list[dict]:
    """Playlists of 8..130 tracks over 400 tracks, a quarter without a name: every category can be filled."""
    rng = np.random.default_rng(seed)
    out = []
    for pid in range(n):
        length = int(rng.integers(8, 131))
        tracks = rng.choice(400, size=length, replace=False)
        out.append({"pid": pid, "name": "" if pid % 4 == 0 else f"list {pid % 7}",
                    "tracks": [{"pos": j, "track_uri": track_uri(int(t)), "artist_uri": f"spotify:artist:{t % 50}",
                                "album_uri": f"spotify:album:{t % 90}"} for j, t in enumerate(tracks)]})
    return out


def test_ranker_split_mirrors_the_challenge_categories(tmp_path):
    store = build_store(long_playlists(), tmp_path / "long")
    split = make_ranker_split(store, n_playlists=100, min_holdouts=5, seed=0)
    assert sorted(set(split.categories.tolist())) == list(range(1, 11))
    assert len(set(split.rows.tolist())) == len(split)
    for i, (row, cat) in enumerate(zip(split.rows.tolist(), split.categories.tolist())):
        category = CATEGORY[cat]
        playlist = store.playlist_tracks(row)
        seeds = split.seed_indices[split.seed_indptr[i] : split.seed_indptr[i + 1]]
        hidden = split.hidden_indices[split.hidden_indptr[i] : split.hidden_indptr[i + 1]]
        assert len(seeds) == category.num_samples and len(playlist) >= category.num_samples + 5
        positions = np.flatnonzero(np.isin(playlist, seeds))
        if category.random:
            assert np.all(np.diff(positions) > 0)  # kept in playlist order
        else:
            np.testing.assert_array_equal(seeds, playlist[: category.num_samples])
        assert (split.titles[i] is not None) == category.titled
        assert split.titles[i] is None or split.titles[i] == store.names[row]
        assert set(hidden.tolist()) == set(playlist.tolist()) - set(seeds.tolist())
    random_rows = [i for i, c in enumerate(split.categories.tolist()) if CATEGORY[c].random]
    first = [np.array_equal(split.seed_indices[split.seed_indptr[i] : split.seed_indptr[i + 1]],
                            store.playlist_tracks(split.rows[i])[: CATEGORY[split.categories[i]].num_samples])
             for i in random_rows]
    assert not all(first)  # random categories really sample positions
    np.testing.assert_array_equal(split.first_seeds(), [not CATEGORY[c].random for c in split.categories.tolist()])
    again = make_ranker_split(store, n_playlists=100, min_holdouts=5, seed=0)
    np.testing.assert_array_equal(again.seed_indices, split.seed_indices)


def test_features_never_see_hidden_songs(store, tmp_path):
    """A ranker playlist's features are the same when its hidden songs are removed from the training store."""
    split = make_ranker_split(store, n_playlists=40, min_holdouts=5, seed=0)
    store_b = strip_hidden(store, split, tmp_path / "stripped")
    assert store_b.fingerprint == store.fingerprint and store_b.n_entries < store.n_entries

    def ranker_features(train):
        model = Rerank(apply_overrides(RerankConfig(), SMALL))
        model.n_tracks = train.n_tracks
        model.fit_candidates_without(train, split.rows)
        return candidate_block(model.models, model.context, split.seed_indptr, split.seed_indices, split.titles, 60)

    a, b = ranker_features(store), ranker_features(store_b)
    assert len(a.rows) > 100
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.tracks, b.tracks)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-5, atol=1e-6, equal_nan=True)
    # and the check can fail: fitting on the whole store instead lets the hidden songs change features
    leaky = Rerank(apply_overrides(RerankConfig(), SMALL))
    leaky.n_tracks = store.n_tracks
    leaky.fit_candidates_without(store, np.zeros(0, np.int64))
    c = candidate_block(leaky.models, leaky.context, split.seed_indptr, split.seed_indices, split.titles, 60)
    assert len(c.rows) != len(a.rows) or not np.allclose(c.features, a.features, equal_nan=True)


def strip_hidden(store, split, out):
    """A copy of ``store`` (same track ids) whose ranker playlists keep only their seeds."""
    playlists = pq.read_table(store.path / PLAYLISTS_FILE)
    lists = playlists.column("tracks").to_pylist()
    for i, row in enumerate(split.rows.tolist()):
        lists[row] = split.seed_indices[split.seed_indptr[i] : split.seed_indptr[i + 1]].tolist()
    out.mkdir()
    shutil.copy(store.path / TRACKS_FILE, out / TRACKS_FILE)
    playlists = playlists.set_column(playlists.schema.get_field_index("tracks"), "tracks",
                                     pa.array(lists, pa.list_(pa.int32())))
    pq.write_table(playlists, out / PLAYLISTS_FILE)
    manifest = dict(store.manifest, counts=dict(store.manifest["counts"], entries=sum(map(len, lists))))
    manifest.pop("files", None)  # sizes and checksums of the original files
    write_json(out / MANIFEST_FILE, manifest)
    return Store.open(out)


def test_features_do_not_depend_on_the_batch(model, store):
    seeds = [seeds_of_genre(store, g, n) for g, n in zip(range(N_GENRES), (0, 1, 3, 5, 8, 2, 4, 6))]
    titles = [GENRES[g] if g % 3 else None for g in range(N_GENRES)]
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in seeds])])
    indices = np.concatenate(seeds).astype(np.int32)
    first = np.arange(N_GENRES) % 2 == 0
    batch = candidate_block(model.models, model.context, indptr, indices, titles, model.config.n_candidates,
                            first_seeds=first)
    np.testing.assert_array_equal(indices, np.concatenate(seeds))  # the caller's seeds are left as they were
    for row in range(N_GENRES):
        one = candidate_block(model.models, model.context, np.array([0, len(seeds[row])]),
                              seeds[row].astype(np.int32), [titles[row]], model.config.n_candidates,
                              first_seeds=first[row : row + 1])
        mine = batch.rows == row
        np.testing.assert_array_equal(one.tracks, batch.tracks[mine])
        np.testing.assert_allclose(one.features, batch.features[mine], rtol=1e-5, atol=1e-6, equal_nan=True)


def test_seed_order_is_a_feature_of_its_own_playlist_and_reaches_the_ranker(model, store, monkeypatch):
    seeds = [seeds_of_genre(store, g, 4) for g in range(3)]
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in seeds])])
    indices = np.concatenate(seeds).astype(np.int32)
    first = np.array([True, False, True])
    plain = candidate_block(model.models, model.context, indptr, indices, None, 20)
    block = candidate_block(model.models, model.context, indptr, indices, None, 20, first_seeds=first)
    names, without = feature_names(list(model.models), seed_order=True), feature_names(list(model.models))
    column = names.index("first_seeds")
    assert names == without[:column] + ["first_seeds"] + without[column:]
    np.testing.assert_array_equal(block.features[:, column], first[block.rows].astype(np.float32))
    np.testing.assert_array_equal(np.delete(block.features, column, axis=1), plain.features)
    # recommend hands each playlist's flag to the features, None meaning "its first tracks"
    seen, build = [], model.build_candidates

    def spy(*args, **kw):
        seen.append(args[3].copy())
        return build(*args, **kw)

    monkeypatch.setattr(model, "build_candidates", spy)
    model.recommend(seeds, k=10, first_seeds=first)
    model.recommend(seeds, k=10)
    np.testing.assert_array_equal(seen[0], first)
    np.testing.assert_array_equal(seen[1], [True, True, True])


def test_missing_ranks_are_missing_not_zero(model, store):
    block = candidate_block(model.models, model.context, np.array([0, 3]), seeds_of_genre(store, 2, 3), ["rap"],
                            model.config.n_candidates)
    names = feature_names(list(model.models))
    ranks = block.features[:, [names.index(f"{m}_rank") for m in model.models]]
    assert np.isnan(ranks).any() and (np.nan_to_num(ranks, nan=1) >= 0).all()
    n_models = block.features[:, names.index("n_models")]
    np.testing.assert_array_equal(n_models, np.isfinite(ranks).sum(axis=1))


def test_save_load_gives_identical_rankings_and_a_report(model, store, tmp_path):
    seeds = [seeds_of_genre(store, g, 3) for g in range(N_GENRES)] + [np.zeros(0, np.int32)]
    titles = [None] * N_GENRES + ["chill"]
    ids, scores = model.recommend(seeds, k=100, titles=titles)
    model.save(tmp_path / "rerank")
    files = {p.name for p in (tmp_path / "rerank").iterdir()}
    assert {"ranker.txt", "context.npz", "candidates", REPORT_JSON, REPORT_PNG, "config.json"} <= files
    assert (tmp_path / "rerank" / "ranker.txt").read_text().startswith("tree")
    assert sorted(p.name for p in (tmp_path / "rerank" / "candidates").iterdir()) == ["als", "cooccur", "title"]
    loaded = load_model(tmp_path / "rerank", store=store)
    again_ids, again_scores = loaded.recommend(seeds, k=100, titles=titles)
    np.testing.assert_array_equal(again_ids, ids)
    np.testing.assert_array_equal(again_scores, scores)
    report = read_json(tmp_path / "rerank" / REPORT_JSON)
    assert set(report["feature_gain"]) == set(feature_names(["als", "cooccur", "title"], seed_order=True))
    recall = report["candidate_recall"]
    assert 60 in recall["n"]
    per_n = {key: values for key, values in recall.items() if key not in ("n", "candidates")}
    assert all(0 <= v <= 1 for values in per_n.values() for v in values)
    assert all(np.all(np.diff(values) >= 0) for values in per_n.values())
    # the candidates are the models' top n_candidates and the expansion's (and the kNN's, if any)
    at_n = recall["n"].index(model.config.n_candidates)
    assert set(recall["candidates"]) == set(per_n)
    assert all(recall["candidates"][key] >= values[at_n] - 1e-9 for key, values in per_n.items())
    assert recall["candidates"]["all"] > recall["all"][at_n]


def test_a_model_saved_before_expansion_candidates_existed_loads_without_them(model, store, tmp_path):
    """Today's default (expansion candidates) must not change what an older model recommends."""
    assert model.config.expansion_candidates > 0
    model.save(tmp_path / "rerank")
    info = read_json(tmp_path / "rerank" / "config.json")
    del info["config"]["expansion_candidates"]
    write_json(tmp_path / "rerank" / "config.json", info)
    assert load_model(tmp_path / "rerank", store=store).config.expansion_candidates == 0


def test_a_model_saved_before_seed_order_existed_loads_without_it(model, store, tmp_path):
    """A ranker trained before the first_seeds feature keeps working (today's default reads it)."""
    assert model.config.seed_order and "first_seeds" in model.ranker.feature_name()
    older = Rerank(apply_overrides(RerankConfig(), {**SMALL, "seed_order": False})).fit(store)
    assert "first_seeds" not in older.ranker.feature_name()
    seeds = [seeds_of_genre(store, g, 3) for g in range(N_GENRES)]
    ids, _ = older.recommend(seeds, k=50, first_seeds=np.arange(N_GENRES) % 2 == 0)
    older.save(tmp_path / "rerank")
    info = read_json(tmp_path / "rerank" / "config.json")
    del info["config"]["seed_order"]
    write_json(tmp_path / "rerank" / "config.json", info)
    loaded = load_model(tmp_path / "rerank", store=store)
    assert loaded.config.seed_order is False
    np.testing.assert_array_equal(loaded.recommend(seeds, k=50)[0], ids)  # it ignores the seed order


def test_a_ranker_trained_on_other_features_is_a_clear_error(model, store, tmp_path):
    from segue.errors import ModelError

    model.save(tmp_path / "rerank")
    ranker = tmp_path / "rerank" / "ranker.txt"
    text = ranker.read_text()
    assert " cooc_last " in text
    ranker.write_text(text.replace(" cooc_last ", " cooc_older ", 1))  # as a model from another segue version
    with pytest.raises(ModelError, match=r"not computed now: \['cooc_older'\]; new: \['cooc_last'\].*retrain"):
        load_model(tmp_path / "rerank", store=store)


def test_ranker_training_is_deterministic(store):
    first = Rerank(apply_overrides(RerankConfig(), SMALL)).fit(store)
    second = Rerank(apply_overrides(RerankConfig(), SMALL)).fit(store)
    assert first.ranker.model_to_string() == second.ranker.model_to_string()


def test_each_fold_has_candidate_models_fitted_without_it(store, monkeypatch):
    """Cross-fitting: the ranker playlists fall into ranker_folds disjoint folds, and each
    fold's features come from candidate models fitted on the store minus that fold (never minus another); the
    folds are of equal size."""
    held_out, featured = [], []
    fit_without, ranker_data = Rerank.fit_candidates_without, Rerank._ranker_data

    def record_fit(self, train, rows, progress=False):
        held_out.append(np.sort(rows))
        return fit_without(self, train, rows, progress)

    def record_features(self, split, progress, label=""):
        featured.append(np.sort(split.rows))
        return ranker_data(self, split, progress, label)

    monkeypatch.setattr(Rerank, "fit_candidates_without", record_fit)
    monkeypatch.setattr(Rerank, "_ranker_data", record_features)
    model = Rerank(apply_overrides(RerankConfig(), {**SMALL, "ranker_folds": 3, "ranker_fraction": 0.1,
                                                     "refit": False})).fit(store)
    assert len(held_out) == 3 and all(np.array_equal(a, b) for a, b in zip(held_out, featured))
    assert len(np.unique(np.concatenate(held_out))) == sum(map(len, held_out)) == model.fit_info["ranker_playlists"]
    assert max(map(len, held_out)) - min(map(len, held_out)) <= 1
    assert model.fit_info["ranker_folds"] == 3


def test_ranker_seeds_are_songs_the_fold_models_were_fitted_on(tmp_path, monkeypatch):
    """A seed that occurs in no playlist outside the fold is unknown to the fold's candidate models; inference drops
    a seed the store does not know (seeds_for_store), so the ranker's playlists must drop it too: otherwise their
    seed counts, means and last seed are unlike any the ranker meets at inference."""
    playlists = long_playlists()
    for p in playlists:  # two songs of its own at the start of every playlist: unknown without it
        own = [{"pos": 0, "track_uri": track_uri(1000 + 2 * p["pid"] + j), "artist_uri": "spotify:artist:x",
                "album_uri": "spotify:album:x"} for j in range(2)]
        p["tracks"] = [{**t, "pos": j} for j, t in enumerate(own + p["tracks"])]
    store = build_store(playlists, tmp_path / "own")
    featured, held_out = [], []
    fit_without, ranker_data = Rerank.fit_candidates_without, Rerank._ranker_data

    def record_fit(self, train, rows, progress=False):
        held_out.append(rows)
        return fit_without(self, train, rows, progress)

    def record_features(self, split, progress, label=""):
        featured.append(split)
        return ranker_data(self, split, progress, label)

    monkeypatch.setattr(Rerank, "fit_candidates_without", record_fit)
    monkeypatch.setattr(Rerank, "_ranker_data", record_features)
    Rerank(apply_overrides(RerankConfig(), {**SMALL, "refit": False})).fit(store)
    full = make_ranker_split(store, 2 * int(SMALL["ranker_fraction"] * store.n_playlists), 5, 0)  # as fit does
    assert len(featured) == 2
    for rows, split in zip(held_out, featured):
        rest = np.setdiff1d(np.arange(store.n_playlists), rows)
        known = np.zeros(store.n_tracks, dtype=bool)
        for row in rest.tolist():
            known[store.playlist_tracks(row)] = True
        assert known[split.seed_indices].all()
        for i, row in enumerate(split.rows.tolist()):  # the known seeds, in playlist order; hidden ones kept
            j = int(np.flatnonzero(full.rows == row)[0])
            seeds = full.seed_indices[full.seed_indptr[j] : full.seed_indptr[j + 1]]
            np.testing.assert_array_equal(split.seed_indices[split.seed_indptr[i] : split.seed_indptr[i + 1]],
                                          seeds[known[seeds]])
            np.testing.assert_array_equal(split.hidden_indices[split.hidden_indptr[i] : split.hidden_indptr[i + 1]],
                                          full.hidden_indices[full.hidden_indptr[j] : full.hidden_indptr[j + 1]])
    assert sum(len(s.seed_indices) for s in featured) < len(full.seed_indices)  # some seeds were unknown


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="holds out the whole store"):
        RerankConfig(ranker_folds=4, ranker_fraction=0.25)
    with pytest.raises(InputError, match="other than rerank"):
        RerankConfig(candidates="als,rerank")
    with pytest.raises(InputError, match="at least one model"):
        RerankConfig(candidates=" , ")
    with pytest.raises(InputError, match="model.key=value"):
        RerankConfig(candidate_settings="factors=3").settings_for("als")
    assert RerankConfig(candidate_settings="als.factors=3, cooccur.alpha=0.5").settings_for("als") == ["factors=3"]


def test_rerank_defaults_for_its_candidate_models_yield_to_candidate_settings(model):
    assert RerankConfig().settings_for("cooccur") == ["neighbors=500"]
    assert RerankConfig().settings_for("als") == []
    # SMALL asks for 40 neighbours: the fitted candidate model has them, not rerank's default
    assert model.models["cooccur"].config.neighbors == 40


def test_train_cli(store, tmp_path, cli):
    args = ["train", "rerank", "--store", store.path, "--out", tmp_path / "rr", "--no-progress"]
    for key, value in SMALL.items():
        args += ["--set", f"{key}={value}"]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "trained rerank on 320 playlists" in result.output
    assert load_model(tmp_path / "rr").config.n_candidates == 60


def test_the_sequential_model_is_a_candidate_source(store, tmp_path):
    from conftest import SEQUENTIAL_FAST, genre_of

    fast = ",".join(f"sequential.{key}={value}" for key, value in SEQUENTIAL_FAST.items())
    settings = {**SMALL, "candidates": "cooccur,sequential", "candidate_settings": f"cooccur.neighbors=40,{fast}"}
    model = Rerank(apply_overrides(RerankConfig(), settings)).fit(store)
    assert set(model.models) == {"cooccur", "sequential"}
    seeds = [seeds_of_genre(store, g, 3) for g in range(N_GENRES)]
    ids, _ = model.recommend(seeds, k=20)
    genre_hits = [np.mean(genre_of(store, ids[g, :10]) == g) for g in range(N_GENRES)]
    assert min(genre_hits) > 0.5, genre_hits
    model.save(tmp_path / "rerank")
    assert sorted(p.name for p in (tmp_path / "rerank" / "candidates").iterdir()) == ["cooccur", "sequential"]
    assert set(read_json(tmp_path / "rerank" / REPORT_JSON)["feature_gain"]) == set(
        feature_names(["cooccur", "sequential"], seed_order=True))


def test_neighbour_evidence_matches_a_direct_count(tmp_path):
    """kNN features: the idf-weighted cosine neighbours of each playlist, counted the slow way."""
    store = build_store(long_playlists(n=60, seed=5), tmp_path / "knn")
    context = FeatureContext.from_store(store)
    matrix = store.csr(binary=True).toarray() > 0
    seeds = [np.array([3, 17, 40], np.int32), np.zeros(0, np.int32), np.array([8, 8, 120], np.int32)]
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in seeds])])
    candidates = np.arange(store.n_tracks)
    keys = np.concatenate([row * np.int64(store.n_tracks) + candidates for row in range(len(seeds))])
    weights = neighbour_weights(context, indptr, np.concatenate(seeds), neighbours=4)
    summed, share = neighbour_evidence(context, weights, keys)
    idf = np.log((store.n_playlists + 1.0) / (matrix.sum(0) + 1.0))
    for row, mine in enumerate(seeds):
        part = slice(row * store.n_tracks, (row + 1) * store.n_tracks)
        mine = np.unique(mine)
        if len(mine) == 0:
            assert not summed[part].any() and not share[part].any()
            continue
        similarity = matrix[:, mine] @ idf[mine] / np.sqrt(matrix.sum(1) * len(mine))
        order = np.lexsort((np.arange(len(similarity)), -similarity))
        near = order[:4][similarity[order[:4]] > 0]
        np.testing.assert_allclose(summed[part], similarity[near] @ matrix[near], rtol=1e-5)
        np.testing.assert_allclose(share[part], matrix[near].sum(0) / len(near), rtol=1e-6)


def test_expansion_features_are_co_occurrence_with_the_first_models_top_songs():
    import scipy.sparse as sp

    n_tracks = 30
    # non-negative, as co-occurrence similarities are (the max over no entry is 0)
    similarity = sp.random(n_tracks, n_tracks, density=0.3, random_state=4, dtype=np.float32, format="csr")
    top = np.array([[4, 9, 2], [7, -1, -1], [-1, -1, -1]])  # best first; -1: fewer songs
    rows = np.repeat(np.arange(3), n_tracks)
    tracks = np.tile(np.arange(n_tracks), 3)
    keys = rows * np.int64(n_tracks) + tracks
    top_max, top_sum, best = _expansion_similarity(similarity, top, keys)
    dense = similarity.toarray()
    for row in range(3):
        songs = [t for t in top[row] if t >= 0]
        got = slice(row * n_tracks, (row + 1) * n_tracks)
        want_sum = dense[songs].sum(axis=0) if songs else np.zeros(n_tracks)
        want_max = dense[songs].max(axis=0) if songs else np.zeros(n_tracks)
        np.testing.assert_allclose(top_sum[got], want_sum, rtol=1e-6)
        np.testing.assert_allclose(top_max[got], want_max, rtol=1e-6)
        np.testing.assert_allclose(best[got], dense[songs[0]] if songs else np.zeros(n_tracks), rtol=1e-6)


def with_and_without(model, store, seed_counts, **extra):
    """Seeds of genres 0, 1, ... (``seed_counts`` each) and their candidate blocks for the models' top 5 alone and
    with the ``extra`` candidate source."""
    seeds = [seeds_of_genre(store, g, n) for g, n in enumerate(seed_counts)]
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in seeds])])
    indices = np.concatenate(seeds).astype(np.int32)
    plain = candidate_block(model.models, model.context, indptr, indices, None, 5)
    wider = candidate_block(model.models, model.context, indptr, indices, None, 5, **extra)
    return seeds, indptr, indices, plain, wider


def test_expansion_candidates_join_the_union_and_leave_the_others_features_alone(model, store):
    """With ``expansion_candidates`` the union also holds each playlist's top songs by co-occurrence summed over
    the first model's top ``EXPANSION_SEEDS`` songs (seeds excluded; the ``expansion_cooc_sum`` feature for every
    track), found here the slow way; the candidates both unions share keep their features."""
    k = 25
    seeds, indptr, indices, plain, wider = with_and_without(model, store, (2, 5, 1), expansion_candidates=k)
    assert wider.features.shape[1] == plain.features.shape[1]  # no feature of its own: the sum is one already
    first = np.asarray(model.models["als"]._score_with_fallback(indptr, indices, None), dtype=np.float32)
    dense = model.models["cooccur"].similarity.toarray()
    added = 0
    for row, mine in enumerate(seeds):
        first[row, mine] = -np.inf
        expansion = top_k(first[row : row + 1], EXPANSION_SEEDS)[0][0]
        summed = dense[expansion[expansion >= 0]].astype(np.float64).sum(axis=0)
        summed[mine] = 0
        kth = np.sort(summed)[-k]
        assert kth > 0
        found, before = wider.tracks[wider.rows == row], plain.tracks[plain.rows == row]
        # the models' tops and the expansion's top k (float32 sums may order near-ties at the k-th differently)
        assert set(np.union1d(before, np.flatnonzero(summed > kth + 1e-5))) <= set(found)
        assert set(found) <= set(np.union1d(before, np.flatnonzero(summed >= kth - 1e-5)))
        assert len(np.union1d(before, np.argsort(-summed)[:k])) == len(found)
        added += len(found) - len(before)
        np.testing.assert_array_equal(wider.features[wider.rows == row][np.isin(found, before)],
                                      plain.features[plain.rows == row])
    assert added > 0


def test_knn_candidates_join_the_union_with_their_rank(model, store):
    """With ``knn_candidates`` the union also holds each playlist's top songs of the playlist-neighbour kNN
    (summed neighbour similarity, seeds excluded), found here the slow way, and ``knn_rank`` says where."""
    k = 15
    seeds, indptr, indices, plain, wider = with_and_without(model, store, (2, 5, 0), knn_candidates=k)
    names = feature_names(list(model.models), knn_candidates=True)
    assert wider.features.shape[1] == len(names) == plain.features.shape[1] + 1
    knn_rank = wider.features[:, names.index("knn_rank")]
    scores = (neighbour_weights(model.context, indptr, indices, NEIGHBOURS) @ model.context.playlists).toarray()
    added = 0
    for row, mine in enumerate(seeds):
        scores[row, mine] = 0
        order = np.lexsort((np.arange(store.n_tracks), -scores[row]))  # best first, ties by track id
        top = order[:k][scores[row, order[:k]] > 0]
        assert len(top) == (k if len(mine) else 0)
        found, before = wider.tracks[wider.rows == row], plain.tracks[plain.rows == row]
        np.testing.assert_array_equal(found, np.union1d(before, top))  # the models' tops and the kNN's, no more
        added += len(found) - len(before)
        place = np.empty(store.n_tracks, np.int64)
        place[order] = np.arange(store.n_tracks)
        ranks = knn_rank[wider.rows == row]
        in_top = np.isin(found, top)
        np.testing.assert_array_equal(ranks[in_top], place[found[in_top]])
        assert np.isnan(ranks[~in_top]).all()
    assert added > 0
