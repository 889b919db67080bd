"""`make_split`: challenge categories, seeds and titles, answers, the train store, determinism."""

import numpy as np
import pytest

from segue.data.challenge_set import infer_category, load_challenge
from segue.data.split import CATEGORIES, load_split, make_split
from segue.data.store import Store, build_store
from segue.data.synth import generate_playlists
from segue.errors import InputError
from segue.io import read_json

PER_CATEGORY = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(generate_playlists(400, seed=5), tmp_path_factory.mktemp("split") / "store")


@pytest.fixture(scope="module")
def split(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("split") / "split"
    info = make_split(store, out, per_category=PER_CATEGORY, seed=11)
    return info, load_split(out)


def test_every_category_has_its_seeds_and_title_rule(store, split):
    info, sp = split
    assert info.counts == {c.number: PER_CATEGORY for c in CATEGORIES}
    raw = read_json(sp.challenge_path)
    assert raw["version"] == "v1" and "date" in raw
    by_cat = {c.number: c for c in CATEGORIES}
    cats = sp.info["categories_by_pid"]
    for p in raw["playlists"]:
        cat = by_cat[cats[str(p["pid"])]]
        assert len(p["tracks"]) == p["num_samples"] == cat.num_samples
        assert p["num_samples"] + p["num_holdouts"] == p["num_tracks"]
        assert ("name" in p) == cat.titled
        row = store.row_of_pid(p["pid"])
        tracks = store.playlist_tracks(row)
        assert p["num_tracks"] == len(tracks) >= cat.num_samples + 5
        if cat.titled:
            assert p["name"] == store.names[row] and p["name"].strip()
        positions = [t["pos"] for t in p["tracks"]]
        assert positions == sorted(positions)
        if not cat.random:
            assert positions == list(range(cat.num_samples))
        assert [t["track_uri"] for t in p["tracks"]] == [store.track_uris[tracks[i]] for i in positions]
        assert set(p["tracks"][0]) == {"pos", "artist_name", "track_uri", "artist_uri", "track_name", "album_uri",
                                       "duration_ms", "album_name"} if p["tracks"] else True
    random_first = [
        [t["pos"] for t in p["tracks"]] == list(range(p["num_samples"]))
        for p in raw["playlists"] if by_cat[cats[str(p["pid"])]].random
    ]
    assert not any(random_first)


def test_categories_can_be_inferred_without_the_hint(split):
    _, sp = split
    plain = load_challenge(sp.challenge_path, use_hints=False)
    assert plain.categories.tolist() == sp.challenge.categories.tolist()
    assert infer_category(25, True, [0, 3, 9]) == 8 and infer_category(5, False, None) == 4
    assert infer_category(7, True, None) == 0


def test_answers_exclude_seeds_repeat_nothing_and_are_known_to_train(split):
    _, sp = split
    train = Store.open(sp.train_path)
    known = set(train.track_uris)
    ch = sp.challenge
    assert set(sp.answers) == set(ch.pids.tolist())
    for row, pid in enumerate(ch.pids.tolist()):
        answers = sp.answers[pid]
        assert answers and len(answers) == len(set(answers))
        assert not set(answers) & set(ch.seeds_of(row))
        assert set(answers) <= known


def test_train_and_test_are_disjoint_and_cover_the_store(store, split):
    info, sp = split
    train = Store.open(sp.train_path)
    test = set(sp.challenge.pids.tolist())
    assert not test & set(train.pids.tolist())
    assert len(test) + train.n_playlists == store.n_playlists == len(test) + info.train_playlists


def test_train_store_is_reindexed_with_recomputed_counts(store, split):
    _, sp = split
    train = Store.open(sp.train_path)
    assert train.manifest["split"]["role"] == "train"
    counts = np.bincount(train.indices, minlength=train.n_tracks)
    assert (counts > 0).all() and np.array_equal(counts, train.track_count)
    assert train.n_entries == len(train.indices)
    assert sorted(set(train.track_artist.tolist()) - {-1}) == list(range(train.n_artists))
    assert sorted(set(train.track_album.tolist()) - {-1}) == list(range(train.n_albums))
    # Same playlists, same tracks (by URI) as in the source store.
    pid = int(train.pids[3])
    original = [store.track_uris[t] for t in store.playlist_tracks(store.row_of_pid(pid))]
    assert [train.track_uris[t] for t in train.playlist_tracks(3)] == original
    row = train.track_info([0])[0]
    source = store.track_info([store.track_id(row["track_uri"])])[0]
    assert row["artist_uri"] == source["artist_uri"] and row["album_name"] == source["album_name"]


def test_split_json_records_rules_and_counts(split):
    _, sp = split
    info = sp.info
    assert info["seed"] == 11 and info["per_category"] == PER_CATEGORY
    assert info["rules"] and set(info["dropped"]) >= {"holdouts_not_in_train", "playlists_without_answers"}
    assert info["categories"]["9"]["min_tracks"] == 105


def test_same_seed_same_split_other_seed_other_split(store, split, tmp_path):
    _, sp = split
    make_split(store, tmp_path / "again", per_category=PER_CATEGORY, seed=11)
    again = load_split(tmp_path / "again")
    assert read_json(again.challenge_path)["playlists"] == read_json(sp.challenge_path)["playlists"]
    assert again.answers == sp.answers
    assert Store.open(again.train_path).fingerprint == Store.open(sp.train_path).fingerprint
    make_split(store, tmp_path / "other", per_category=PER_CATEGORY, seed=12)
    assert load_split(tmp_path / "other").answers != sp.answers


def test_too_little_data_names_the_largest_allowed_size(store, tmp_path):
    with pytest.raises(InputError, match=r"at most --per-category \d+"):
        make_split(store, tmp_path / "big", per_category=1000)
    assert not (tmp_path / "big").exists()


def test_bad_per_category_and_missing_split_dir(store, tmp_path):
    with pytest.raises(InputError, match="positive"):
        make_split(store, tmp_path / "x", per_category=0)
    with pytest.raises(InputError, match="segue split"):
        load_split(tmp_path)


def test_playlists_without_answers_go_back_to_train(tmp_path):
    # Two kinds of playlists: long ones whose every track is unique to them (answers would be empty once
    # held out), and shared ones. Unique-track test playlists must be dropped and returned to train.
    def playlist(pid, uris, name="mix"):
        return {"pid": pid, "name": name, "tracks": [{"track_uri": u, "pos": i} for i, u in enumerate(uris)]}

    shared = [f"spotify:track:{i:022d}" for i in range(120)]
    playlists = [playlist(p, shared) for p in range(30)]
    playlists += [playlist(100 + p, [f"spotify:track:{1000 * (p + 1) + i:022d}" for i in range(110)]) for p in range(10)]
    store = build_store(playlists, tmp_path / "store")
    info = make_split(store, tmp_path / "split", per_category=1, seed=0)
    sp = load_split(tmp_path / "split")
    returned = info.dropped["playlists_without_answers"]
    assert info.n_test + returned == 10
    assert info.train_playlists == 40 - info.n_test
    assert all(pid < 100 for pid in sp.challenge.pids.tolist())
    assert sum(c["dropped_without_answers"] for c in sp.info["categories"].values()) == returned
