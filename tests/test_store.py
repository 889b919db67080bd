"""The store: damaged files are noticed when it is opened, and the shared URI -> id index."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segue.data.store as store_module
from segue.data.store import PLAYLISTS_FILE, TRACKS_FILE, Store, TrackIndex, build_store
from segue.errors import StoreError


@pytest.fixture(scope="module")
def built(tmp_path_factory, _synth_cache):
    return build_store(_synth_cache[:60], tmp_path_factory.mktemp("s") / "store")


@pytest.fixture
def copy(built, tmp_path):
    shutil.copytree(built.path, tmp_path / "store")
    return tmp_path / "store"


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])


@pytest.mark.parametrize("name", [TRACKS_FILE, PLAYLISTS_FILE])
@pytest.mark.parametrize("keep", [lambda n: 0, lambda n: n // 2, lambda n: n - 1],
                         ids=["empty", "half", "one byte short"])
def test_a_truncated_parquet_file_is_noticed_on_open(name, keep, copy):
    _truncate(copy / name, keep)
    with pytest.raises(StoreError, match=rf"store {copy} is damaged \({name}: .*truncated.*\); re-ingest"):
        Store.open(copy)


@pytest.mark.parametrize("name", [TRACKS_FILE, PLAYLISTS_FILE])
def test_a_truncated_file_without_recorded_sizes_is_noticed_by_its_footer(name, copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]  # a store written before sizes were recorded
    (copy / "manifest.json").write_text(json.dumps(manifest))
    _truncate(copy / name, lambda n: n - 100)
    with pytest.raises(StoreError, match=rf"damaged \({name}: not a readable Parquet file"):
        Store.open(copy)


@pytest.mark.parametrize("damage, reason", [
    (lambda text: text[: len(text) // 2], "manifest.json: not valid JSON"),
    (lambda text: "", "manifest.json: not valid JSON"),
    (lambda text: "[1, 2]", "manifest.json: not a JSON object"),
    (lambda text: text.replace('"counts"', '"counted"'), "manifest.json: 'counts' should hold"),
    (lambda text: text.replace('"fingerprint"', '"fp"'), "manifest.json: 'fingerprint' is missing"),
])
def test_a_corrupt_manifest_is_a_damaged_store(damage, reason, copy):
    path = copy / "manifest.json"
    path.write_text(damage(path.read_text()))
    with pytest.raises(StoreError, match=f"damaged \\({reason}"):
        Store.open(copy)


def test_a_missing_file_and_a_changed_file(copy):
    (copy / TRACKS_FILE).unlink()
    with pytest.raises(StoreError, match=rf"damaged \({TRACKS_FILE}: the file is missing"):
        Store.open(copy)


def test_verify_compares_checksums(built, copy):
    Store.open(copy).verify()
    data = bytearray((copy / PLAYLISTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    (copy / PLAYLISTS_FILE).write_bytes(bytes(data))
    with pytest.raises(StoreError, match=rf"damaged \({PLAYLISTS_FILE}: its checksum differs"):
        Store.open(copy).verify()


def test_cli_reports_a_damaged_store_without_a_traceback(copy, cli, tmp_path):
    _truncate(copy / TRACKS_FILE, lambda n: n // 3)
    for args in (["stats", copy], ["train", "popular", "--store", copy, "--out", tmp_path / "m"],
                 ["split", copy, "--out", tmp_path / "split"]):
        result = cli(*args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "".join(result.stderr.split()).startswith(f"error:store{copy}isdamaged")
    assert not (tmp_path / "m").exists() and not (tmp_path / "split").exists()


# ---- URI -> id -------------------------------------------------------------------------------------------

def test_two_stores_of_one_vocabulary_share_one_index(built, copy):
    first, second = Store.open(built.path), Store.open(copy)
    assert first._track_index is second._track_index


def test_lookups_match_a_dict_including_unknown_uris(built):
    store = Store.open(built.path)
    truth = {uri: i for i, uri in enumerate(store.track_uris)}
    rng = np.random.default_rng(0)
    queries = [store.track_uris[i] for i in rng.integers(0, store.n_tracks, 500)]
    queries += ["spotify:track:unknown", "", None, store.track_uris[0] + "x", store.track_uris[-1][:-1], "é🎶"]
    rng.shuffle(queries)
    expected = [truth.get(q, -1) if q is not None else -1 for q in queries]
    assert store.track_ids(queries).tolist() == expected
    assert store.track_ids(pa.array(queries)).tolist() == expected
    assert store.track_ids(iter(queries), missing=-7).tolist() == [e if e >= 0 else -7 for e in expected]
    assert store.track_ids([]).tolist() == []
    assert store.track_id(store.track_uris[5]) == 5
    with pytest.raises(Exception, match="not in the store"):
        store.track_id("spotify:track:unknown")


def test_hash_collisions_still_find_the_right_id(monkeypatch):
    uris = pa.array([f"u{i}" for i in range(50)] + ["", "same"])
    # every string hashes alike: lookups must walk the run of equal hashes and compare the strings
    monkeypatch.setattr(store_module, "string_hashes", lambda values: np.zeros(len(values), dtype=np.uint64))
    index = TrackIndex(uris)
    queries = ["u7", "u49", "nope", "", "same", None]
    assert index.ids(queries).tolist() == [7, 49, -1, 50, 51, -1]


def test_string_hashes_differ_for_near_strings():
    values = ["", "a", "b", "ab", "ba", "a\x00", "\x00a", "spotify:track:1", "spotify:track:2", "é", "e"]
    hashes = store_module.string_hashes(pa.array(values), block=3)  # several blocks
    assert len(set(hashes.tolist())) == len(values)
    assert np.array_equal(hashes, store_module.string_hashes(pa.array(values)))


def _vocabulary_ids(slices: list[list[str]]) -> list[list[int]]:
    vocabulary = store_module._Vocabulary()
    return [vocabulary.ids(pa.array(uris, pa.string())).tolist() for uris in slices]


def _dict_ids(slices: list[list[str]]) -> list[list[int]]:
    index: dict[str, int] = {}
    return [[index.setdefault(uri, len(index)) for uri in uris] for uris in slices]


@pytest.mark.parametrize("weak_hash", [None, "zero", "length"])
def test_ingest_vocabulary_numbers_uris_in_first_appearance_order_whatever_the_hashes(weak_hash, monkeypatch):
    rng = np.random.default_rng(1)
    pool = [f"spotify:track:{i:022d}" for i in range(3000)] + ["", "é🎶", "x" * 100, "spotify:track:1"]
    # slices of distinct URIs, overlapping, enough of them that the table grows several times
    slices = [list(dict.fromkeys(rng.choice(pool, size=rng.integers(1, 400)).tolist())) for _ in range(40)]
    if weak_hash:  # every URI collides with others: ids must still be exact
        hashes = {"zero": lambda values: np.zeros(len(values), dtype=np.uint64),
                  "length": lambda values: pc.binary_length(values).to_numpy().astype(np.uint64) % 7}
        monkeypatch.setattr(store_module, "string_hashes", hashes[weak_hash])
    assert _vocabulary_ids(slices) == _dict_ids(slices)
