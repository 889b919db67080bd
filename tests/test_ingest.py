"""segue ingest: MPD JSON (slices, folders, the zip, challenge sets) into a store, exactly and safely."""

from __future__ import annotations

import copy
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import segue.data.mpd as mpd
from segue.data.ingest import ingest, natural_key, resolve_sources
from segue.data.store import Store
from segue.errors import InputError


def slice_doc(playlists: list[dict], start: int = 0) -> dict:
    end = start + max(len(playlists), 1) - 1
    return {"info": {"generated_on": "2017-12-03 08:41:42.057563", "slice": f"{start}-{end}", "version": "v1"},
            "playlists": playlists}


def write_slice(folder: Path, playlists: list[dict], start: int = 0, name: str | None = None) -> Path:
    """Write a slice the way the MPD does: pretty-printed, non-ASCII as \\u escapes."""
    folder.mkdir(parents=True, exist_ok=True)
    end = start + max(len(playlists), 1) - 1
    path = folder / (name or f"mpd.slice.{start}-{end}.json")
    path.write_text(json.dumps(slice_doc(playlists, start), indent=8))
    return path


def edge_playlists(first_pid: int = 1000) -> list[dict]:
    """Hand-made playlists covering what synthetic data rarely has: stripped fields, repeats, odd text."""
    track = {"pos": 0, "artist_name": "Zoë", "track_uri": "spotify:track:edge0000000000000000001",
             "artist_uri": "spotify:artist:edge000000000000000001", "track_name": "Ça va 🎶",
             "album_uri": "spotify:album:edge0000000000000000001", "duration_ms": 181000, "album_name": "Été"}
    other = dict(track, track_uri="spotify:track:edge0000000000000000002", track_name="Other", pos=1)
    return [
        # only the required fields
        {"pid": first_pid, "tracks": [{"track_uri": "spotify:track:bare00000000000000000001"},
                                      {"track_uri": "spotify:track:bare00000000000000000002"}]},
        # repeats, a description, collaborative, leading/trailing spaces and emoji in the title
        {"name": "  Road trip 🚗 ", "collaborative": "true", "pid": first_pid + 1, "modified_at": 1500000000,
         "num_tracks": 4, "num_albums": 1, "num_followers": 3, "num_edits": 2, "duration_ms": 1,
         "num_artists": 1, "description": "for the <b>drive</b>",
         "tracks": [track, other, dict(track, pos=2), dict(track, pos=3)]},
        # an empty track list, and a later occurrence of a track with different metadata (first one wins)
        {"name": "empty", "pid": first_pid + 2, "tracks": []},
        {"name": "again", "pid": first_pid + 3, "collaborative": "false",
         "tracks": [dict(other, track_name="renamed later", pos=0)]},
    ]


@pytest.fixture
def dataset(synth_playlists, tmp_path):
    """Synthetic playlists plus the hand-made edge cases, written as three slices."""
    playlists = synth_playlists + edge_playlists()
    folder = tmp_path / "mpd"
    write_slice(folder, playlists[:100], 0)
    write_slice(folder, playlists[100:200], 100)
    write_slice(folder, playlists[200:], 200)
    return folder, playlists


@pytest.mark.parametrize("workers", [0, 2])
def test_round_trip_is_exact(dataset, tmp_path, workers, assert_store_equals):
    folder, playlists = dataset
    store = ingest([folder], tmp_path / "store", workers=workers)
    assert_store_equals(store, playlists)
    manifest = store.manifest
    assert manifest["counts"]["playlists"] == len(playlists)
    assert manifest["skipped"] == [] and manifest["warnings"] == {}
    for source in manifest["sources"]:
        data = Path(source["path"]).read_bytes()
        assert source["size"] == len(data) and source["sha256"] == hashlib.sha256(data).hexdigest()
        assert source["kind"] == "slice"


def test_worker_counts_give_identical_stores(dataset, tmp_path):
    folder, _ = dataset
    one = ingest([folder], tmp_path / "a", workers=0)
    two = ingest([folder], tmp_path / "b", workers=2)
    assert one.fingerprint == two.fingerprint
    assert np.array_equal(one.indices, two.indices) and np.array_equal(one.indptr, two.indptr)
    assert one.tracks.equals(two.tracks)


def test_fast_and_careful_parsers_agree(synth_playlists, monkeypatch):
    playlists = synth_playlists + edge_playlists()
    playlists[5]["num_tracks"] += 1
    fast = mpd.parse_playlists(copy.deepcopy(playlists), "x.json")
    assert fast.warnings == {"num_tracks_mismatch": 1}
    monkeypatch.setattr(mpd, "_parse_fast", lambda *args: None)
    careful = mpd.parse_playlists(copy.deepcopy(playlists), "x.json")
    for name in ("pid", "name", "description", "collaborative", "modified_at", "num_followers", "num_edits",
                 "track_uri", "track_name", "artist_uri", "artist_name", "album_uri", "album_name", "duration_ms"):
        assert fast.column(name) == careful.column(name), name
    assert fast.warnings == careful.warnings
    assert list(fast.lengths) == list(careful.lengths)
    assert np.array_equal(fast.entries(), careful.entries())


def _columns(parsed) -> dict:
    names = ("pid", "name", "description", "collaborative", "modified_at", "num_followers", "num_edits",
             "track_uri", "track_name", "artist_uri", "artist_name", "album_uri", "album_name", "duration_ms")
    out = {name: parsed.column(name) for name in names}
    out.update(lengths=list(parsed.lengths), entries=parsed.entries().tolist(), warnings=parsed.warnings)
    return out


@pytest.mark.parametrize("challenge", [False, True])
def test_columnar_document_path_agrees_with_the_dict_paths(synth_playlists, monkeypatch, challenge):
    playlists = copy.deepcopy(synth_playlists + edge_playlists())
    playlists[5]["num_tracks"] += 1
    if challenge:
        for playlist in playlists:
            playlist["num_samples"] = len(playlist["tracks"]) - (playlist["pid"] % 2)
            playlist["num_holdouts"] = 3
        doc = {"date": "2018-01-16 08:47:28.198015", "version": "v1", "playlists": playlists}
    else:
        doc = slice_doc(playlists)
    data = json.dumps(doc, indent=4).encode()
    kind, columnar = mpd.parse_document_fast(data, "x.json")
    assert kind == ("challenge" if challenge else "slice")
    count_field = "num_samples" if challenge else "num_tracks"
    assert columnar.warnings == {f"{count_field}_mismatch": (len(playlists) + 1) // 2 if challenge else 1}
    from_dicts = mpd.parse_playlists(json.loads(data)["playlists"], "x.json", challenge=challenge)
    monkeypatch.setattr(mpd, "_parse_fast", lambda *args: None)
    careful = mpd.parse_playlists(json.loads(data)["playlists"], "x.json", challenge=challenge)
    assert _columns(columnar) == _columns(from_dicts) == _columns(careful)


ODD_DOCUMENTS = {
    "pid as a bool": lambda p: p[0].update(pid=True),
    "negative pid": lambda p: p[0].update(pid=-1),
    "pid beyond int64": lambda p: p[0].update(pid=2**63),
    "duplicate pid": lambda p: p[1].update(pid=p[0]["pid"]),
    "float duration": lambda p: p[0]["tracks"][0].update(duration_ms=1.5),
    "empty track_uri": lambda p: p[0]["tracks"][0].update(track_uri=""),
    "missing track_uri": lambda p: p[0]["tracks"][0].pop("track_uri"),
    "numeric track name": lambda p: p[0]["tracks"][0].update(track_name=5),
    "collaborative 'yes'": lambda p: p[0].update(collaborative="yes"),
    "tracks missing": lambda p: p[0].pop("tracks"),
    "playlist not an object": lambda p: p.__setitem__(0, [1, 2]),
    "playlist null": lambda p: p.__setitem__(0, None),
    "track null": lambda p: p[0]["tracks"].__setitem__(0, None),
    "pid missing": lambda p: p[0].pop("pid"),
    "pos as text": lambda p: p[0]["tracks"][0].update(pos="0"),
    "pos as a bool": lambda p: [t.update(pos=True) for t in p[0]["tracks"]],
    "a float in an unknown field": lambda p: p[0].update(score=0.5),
}
# what Arrow's JSON reader would read differently from a strict JSON decoder, or could not tell apart
ODD_BYTES = {
    "NaN in an unknown field": lambda data: data.replace(b'"version": "v1"', b'"version": NaN', 1),
    "-Infinity in an unknown field": lambda data: data.replace(b'"version": "v1"', b'"version": -Infinity', 1),
    "invalid UTF-8 in an unknown field": lambda data: data.replace(b'"v1"', b'"v\xff1"', 1),
    "a second document after the first": lambda data: data + b"\n{}",
    "a duplicate key": lambda data: data.replace(b'"pid": ', b'"pid": 0, "pid": ', 1),
    "unfinished": lambda data: data[: len(data) // 2],
    "num_holdouts null, no info": lambda data: data.replace(b'"info"', b'"other"', 1).replace(
        b'"pid": ', b'"num_holdouts": null, "pid": ', 1),
}


@pytest.mark.parametrize("case", sorted(ODD_DOCUMENTS))
def test_columnar_document_path_declines_anything_odd(case, synth_playlists):
    playlists = copy.deepcopy(synth_playlists[:5])
    ODD_DOCUMENTS[case](playlists)
    assert mpd.parse_document_fast(json.dumps(slice_doc(playlists)).encode(), "x.json") is None
    assert mpd.parse_document_fast(json.dumps(synth_playlists[:5]).encode(), "x.json") is None  # a bare array
    assert mpd.parse_document_fast(b'{"playlists": [', "x.json") is None


@pytest.mark.parametrize("case", sorted(ODD_BYTES))
def test_columnar_document_path_declines_what_strict_json_reads_otherwise(case, synth_playlists):
    data = json.dumps(slice_doc(synth_playlists[:5])).encode()
    assert mpd.parse_document_fast(data, "x.json") is not None
    odd = ODD_BYTES[case](data)
    assert odd != data
    assert mpd.parse_document_fast(odd, "x.json") is None


def test_columnar_document_path_reads_json_booleans_and_raw_utf8_like_the_dict_paths(synth_playlists):
    playlists = copy.deepcopy(synth_playlists[:20]) + edge_playlists()
    for playlist in playlists:
        playlist["collaborative"] = playlist["pid"] % 2 == 0  # JSON booleans, as other tools write them
        playlist.pop("num_tracks", None)
    data = json.dumps(slice_doc(playlists), ensure_ascii=False).encode()  # raw UTF-8, not \u escapes
    assert not data.isascii()
    kind, columnar = mpd.parse_document_fast(data, "x.json")
    assert kind == "slice"
    assert _columns(columnar) == _columns(mpd.parse_playlists(json.loads(data)["playlists"], "x.json"))


def test_columnar_and_dict_paths_write_identical_stores(dataset, tmp_path, monkeypatch):
    folder, _ = dataset
    shuffled = copy.deepcopy(edge_playlists(first_pid=5000))
    shuffled[1]["tracks"][0]["pos"] = 7
    shuffled[1]["num_tracks"] = 9
    write_slice(folder, shuffled, 5000)
    assert all(mpd.parse_document_fast(path.read_bytes(), path.name) for path in folder.iterdir())
    columnar = ingest([folder], tmp_path / "columnar", workers=0)
    monkeypatch.setattr("segue.data.ingest.parse_document_fast", lambda data, name: None)
    from_dicts = ingest([folder], tmp_path / "dicts", workers=0)
    assert columnar.manifest["warnings"] == from_dicts.manifest["warnings"] == {"pos_mismatch": 1,
                                                                                "num_tracks_mismatch": 1}
    assert columnar.manifest["counts"] == from_dicts.manifest["counts"]
    assert columnar.fingerprint == from_dicts.fingerprint
    for name in ("tracks.parquet", "playlists.parquet"):
        assert pq.read_table(columnar.path / name).equals(pq.read_table(from_dicts.path / name)), name


def test_slices_are_ordered_by_start_index_not_lexically(synth_playlists, tmp_path):
    folder = tmp_path / "mpd"
    starts = [0, 100, 200, 1000, 2000]  # lexical order would put 1000 and 2000 before 200
    for i, start in enumerate(starts):
        chunk = copy.deepcopy(synth_playlists[i * 20 : (i + 1) * 20])
        for j, playlist in enumerate(chunk):
            playlist["pid"] = start + j
        write_slice(folder, chunk, start, name=f"mpd.slice.{start}-{start + 99}.json")
    names = [s.path.name for s in resolve_sources([folder])]
    assert names == [f"mpd.slice.{s}-{s + 99}.json" for s in starts]
    store = ingest([folder], tmp_path / "store", workers=2)
    assert store.pids.tolist() == [s + j for s in starts for j in range(20)]
    assert sorted(["b10", "b9", "a"], key=natural_key) == ["a", "b9", "b10"]


def test_stripped_playlist_with_only_pid_and_track_uris(tmp_path, assert_store_equals):
    playlists = [{"pid": 7, "tracks": [{"track_uri": "spotify:track:a"}, {"track_uri": "spotify:track:b"},
                                       {"track_uri": "spotify:track:a"}]},
                 {"pid": 3, "tracks": [{"track_uri": "spotify:track:b"}]}]
    path = write_slice(tmp_path, playlists)
    store = ingest([path], tmp_path / "store")
    assert_store_equals(store, playlists)
    assert store.track_artist.tolist() == [-1, -1] and store.track_album.tolist() == [-1, -1]
    assert store.names == [None, None] and store.n_artists == 0


def test_challenge_set_ingests_seed_tracks_without_count_warnings(synth_playlists, tmp_path, cli, assert_store_equals):
    challenge = []
    for i, playlist in enumerate(synth_playlists[:30]):
        seeds = playlist["tracks"][: i % 6]
        entry = {"pid": 1_000_000 + i, "num_holdouts": len(playlist["tracks"]) - len(seeds),
                 "num_samples": len(seeds), "num_tracks": len(playlist["tracks"]), "tracks": seeds}
        if i % 3:
            entry["name"] = playlist["name"]
        challenge.append(entry)
    path = tmp_path / "challenge_set.json"
    path.write_text(json.dumps({"date": "2018-01-16 08:47:28.198015", "version": "v1", "playlists": challenge}))
    result = cli("ingest", path, "--out", tmp_path / "store", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr
    store = Store.open(tmp_path / "store")
    assert_store_equals(store, challenge)
    assert store.manifest["warnings"] == {} and store.manifest["sources"][0]["kind"] == "challenge"


def test_count_mismatch_is_a_warning_with_a_count(synth_playlists, tmp_path, cli):
    synth_playlists[3]["num_tracks"] += 2
    synth_playlists[8]["num_tracks"] = 0
    path = write_slice(tmp_path / "mpd", synth_playlists)
    result = cli("ingest", path, "--out", tmp_path / "store", "--no-progress")
    assert result.exit_code == 0, result.output
    assert _squash("2 playlists whose num_tracks differs") in _squash(result.stderr)
    assert "2 warnings" in result.stdout
    assert Store.open(tmp_path / "store").manifest["warnings"] == {"num_tracks_mismatch": 2}


def test_zip_layout_reads_members_in_slice_order(dataset, tmp_path, assert_store_equals):
    folder, playlists = dataset
    archive = tmp_path / "spotify_million_playlist_dataset.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.md", "readme")
        zf.writestr("src/stats.py", "print()")
        for path in sorted(folder.iterdir(), reverse=True):  # stored out of order on purpose
            zf.write(path, f"data/{path.name}")
    store = ingest([archive], tmp_path / "store", workers=2)
    assert_store_equals(store, playlists)
    sources = store.manifest["sources"]
    in_order = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
    assert [s["member"] for s in sources] == [f"data/{p.name}" for p in in_order]
    with zipfile.ZipFile(archive) as zf:
        for source in sources:
            assert source["sha256"] == hashlib.sha256(zf.read(source["member"])).hexdigest()
    assert store.fingerprint == ingest([folder], tmp_path / "from-folder").fingerprint


# ---- bad input: a clear error, exit code 1, the old store untouched ------------------------------------


def _corrupt(case: str, folder: Path, playlists: list[dict]) -> tuple[str, list[str]]:
    """Write a good slice and a bad one; return the bad file's name and the phrases the error must contain."""
    good, bad = copy.deepcopy(playlists[:50]), copy.deepcopy(playlists[50:100])
    write_slice(folder, good, 0)
    bad_name = "mpd.slice.50-99.json"
    if case == "unparseable":
        text = json.dumps(slice_doc(bad, 50), indent=8).splitlines()
        text[40] = text[40] + " oops"
        (folder / bad_name).write_text("\n".join(text))
        return bad_name, ["not valid JSON", "line 41"]
    if case == "truncated":
        data = json.dumps(slice_doc(bad, 50), indent=8).encode()
        (folder / bad_name).write_bytes(data[: len(data) // 2])
        return bad_name, ["truncated"]
    if case == "pid_as_string":
        bad[4]["pid"] = "54"
        expected = ["position 4", "'pid'", "'54'"]
    elif case == "followers_as_string":
        bad[7]["num_followers"] = "x"
        expected = ["position 7", "pid 57", "num_followers", "'x'"]
    elif case == "duplicate_pid_in_file":
        bad[9]["pid"] = bad[2]["pid"]
        expected = ["duplicate pid 52", "position 9"]
    elif case == "duplicate_pid_across_files":
        bad[3]["pid"] = good[0]["pid"]
        expected = ["duplicate pid 0", "mpd.slice.0-49.json"]
    elif case == "missing_track_uri":
        del bad[6]["tracks"][2]["track_uri"]
        expected = ["pid 56", "tracks[2].track_uri", "missing"]
    elif case == "tracks_not_a_list":
        bad[1]["tracks"] = {"track_uri": "spotify:track:x"}
        expected = ["pid 51", "'tracks'"]
    elif case == "not_a_slice":
        (folder / bad_name).write_text(json.dumps({"hello": 1}))
        return bad_name, ["'playlists'"]
    else:
        raise AssertionError(case)
    write_slice(folder, bad, 50, name=bad_name)
    return bad_name, expected


def _squash(text: str) -> str:
    return "".join(text.split())


BAD_CASES = ["unparseable", "truncated", "pid_as_string", "followers_as_string", "duplicate_pid_in_file",
             "duplicate_pid_across_files", "missing_track_uri", "tracks_not_a_list", "not_a_slice"]
WHOLE_FILE_CASES = {"unparseable", "truncated", "not_a_slice"}


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_fails_clearly_and_keeps_the_old_store(case, synth_playlists, tmp_path, cli):
    old_source = write_slice(tmp_path / "old", synth_playlists[:20])
    store_path = tmp_path / "store"
    assert cli("ingest", old_source, "--out", store_path, "--no-progress").exit_code == 0
    before = {p.name: p.read_bytes() for p in store_path.iterdir()}

    folder = tmp_path / "mpd"
    bad_name, phrases = _corrupt(case, folder, synth_playlists)
    result = cli("ingest", folder, "--out", store_path, "--workers", "2", "--no-progress")
    assert result.exit_code == 1
    message = _squash(result.stderr)  # rich wraps long lines, even inside a path
    assert message.startswith("error:")
    assert _squash(bad_name) in message
    for phrase in phrases:
        assert _squash(phrase) in message, (phrase, result.stderr)
    assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in store_path.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mpd", "old", "store"]  # no temp dirs left behind


@pytest.mark.parametrize("case", BAD_CASES)
def test_skip_invalid_skips_records_and_keeps_the_rest(case, synth_playlists, tmp_path, cli):
    folder = tmp_path / "mpd"
    bad_name, _ = _corrupt(case, folder, synth_playlists)
    result = cli("ingest", folder, "--out", tmp_path / "store", "--skip-invalid", "--no-progress")
    assert result.exit_code == 0, result.output
    store = Store.open(tmp_path / "store")
    skipped = store.manifest["skipped"]
    assert len(skipped) == 1 and bad_name in skipped[0]["reason"]
    assert "skipped:" in result.stderr and _squash(bad_name) in _squash(result.stderr)
    if case in WHOLE_FILE_CASES:
        assert store.n_playlists == 50
        assert _squash("skipped 0 playlists and 1 file;") in _squash(result.stdout)
    else:
        assert store.n_playlists == 99
        assert _squash("skipped 1 playlist and 0 files") in _squash(result.stdout)
        assert skipped[0]["pid"] is not None
    assert store.manifest["counts"]["playlists"] == store.n_playlists


def test_api_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ingest([tmp_path / "missing.json"], tmp_path / "store")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .json files"):
        ingest([tmp_path / "empty"], tmp_path / "store")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(InputError, match="empty"):
        ingest([tmp_path / "empty.json"], tmp_path / "store")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="zip"):
        ingest([tmp_path / "bad.zip"], tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_refuses_to_replace_a_folder_that_is_not_a_store(synth_playlists, tmp_path, cli):
    path = write_slice(tmp_path / "mpd", synth_playlists[:5])
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    result = cli("ingest", path, "--out", precious, "--no-progress")
    assert result.exit_code == 1 and _squash("not a segue store") in _squash(result.stderr)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_subset_without_uris_keys_artists_and_albums_by_name(tmp_path):
    def track(n, artist, album=None):
        return {"track_uri": f"spotify:track:{n}", "track_name": f"Song {n}", "artist_name": artist,
                **({"album_name": album} if album else {})}

    playlists = [{"pid": 0, "tracks": [track(1, "Ann", "Hits"), track(2, "Bob", "Hits"), track(3, "Ann")]},
                 {"pid": 1, "tracks": [track(4, "Bob", "Hits"), track(1, "Ann", "Hits")]}]
    store = ingest([write_slice(tmp_path, playlists)], tmp_path / "store")
    assert store.track_artist.tolist() == [0, 1, 0, 1]
    # albums are scoped by artist when there is no URI: Ann's "Hits" is not Bob's "Hits"
    assert store.track_album.tolist() == [0, 1, -1, 1]
    assert (store.n_artists, store.n_albums) == (2, 2)


def test_corrupt_zip_member_is_a_clear_error_or_a_skip(synth_playlists, tmp_path):
    folder = tmp_path / "mpd"
    write_slice(folder, synth_playlists[:40], 0)
    write_slice(folder, synth_playlists[40:80], 40)
    archive = tmp_path / "mpd.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"data/{path.name}")
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("data/mpd.slice.40-79.json")
    data = bytearray(archive.read_bytes())
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle : middle + 64] = bytes(64)  # damage the compressed bytes of the second member
    archive.write_bytes(bytes(data))
    with pytest.raises(InputError, match="mpd.slice.40-79.json"):
        ingest([archive], tmp_path / "store")
    store = ingest([archive], tmp_path / "store", skip_invalid=True)
    assert store.n_playlists == 40 and store.manifest["skipped"][0]["pid"] is None


def test_lone_surrogate_escapes_are_kept_as_replacement_characters(synth_playlists, tmp_path, cli):
    playlists = copy.deepcopy(synth_playlists[:10])
    playlists[3]["name"] = "LONE_HIGH"
    playlists[5]["tracks"][0].update(track_uri="spotify:track:lonesurrogate000000001", track_name="LONE_LOW")
    playlists[6]["name"] = "pair 🎶"
    text = json.dumps(slice_doc(playlists), indent=4)  # ensure_ascii: the emoji pair is two \u escapes
    text = text.replace("LONE_HIGH", "cut \\ud83d").replace("LONE_LOW", "\\udc00 x")
    path = tmp_path / "mpd.slice.0-9.json"
    path.write_text(text)
    result = cli("ingest", path, "--out", tmp_path / "store", "--no-progress")
    assert result.exit_code == 0, result.output
    store = Store.open(tmp_path / "store")
    assert store.names[3] == "cut \ufffd" and store.names[6] == "pair 🎶"
    row = store.track_info([store.playlist_tracks(5)[0]])[0]
    assert row["track_name"] == "\ufffd x"
    assert store.manifest["warnings"] == {"lone_surrogates_replaced": 2}


def test_a_byte_order_mark_is_ignored_and_the_hash_covers_the_file(synth_playlists, tmp_path, assert_store_equals):
    path = tmp_path / "mpd.slice.0-4.json"
    data = b"\xef\xbb\xbf" + json.dumps(slice_doc(synth_playlists[:5]), indent=4).encode()
    path.write_bytes(data)
    store = ingest([path], tmp_path / "store", workers=0)
    assert_store_equals(store, synth_playlists[:5])
    assert store.manifest["sources"][0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_skipped_duplicate_pids_leave_no_phantom_tracks(synth_playlists, tmp_path):
    first, second = synth_playlists[:10], copy.deepcopy(synth_playlists[10:20])
    # a playlist repeating pid 3 brings tracks found nowhere else; after it, a kept one shares a track
    only_here = [{"track_uri": f"spotify:track:phantom{i}", "track_name": "ghost"} for i in range(3)]
    second[0] = {"pid": 3, "name": "copy", "tracks": [*only_here, second[1]["tracks"][0]]}
    store = ingest([write_slice(tmp_path / "a", first), write_slice(tmp_path / "b", second, 10)],
                   tmp_path / "store", skip_invalid=True, workers=0)
    assert not set(store.track_uris) & {t["track_uri"] for t in only_here}
    assert store.track_count.min() >= 1  # every track of the vocabulary occurs in a playlist
    expected = ingest([write_slice(tmp_path / "c", first + second[1:])], tmp_path / "expected", workers=0)
    assert store.track_uris == expected.track_uris
    assert np.array_equal(store.indices, expected.indices) and np.array_equal(store.indptr, expected.indptr)
    assert store.track_count.tolist() == expected.track_count.tolist()
    reason = store.manifest["skipped"][0]["reason"]
    assert "duplicate pid 3" in reason and "--skip-invalid" not in reason


@pytest.mark.parametrize("field, value", [("pid", 2**63), ("num_followers", 2**63), ("modified_at", -(2**63) - 1)])
def test_integers_beyond_int64_are_input_errors(field, value, synth_playlists, tmp_path):
    synth_playlists[4][field] = value
    with pytest.raises(InputError, match=f"position 4.*'{field}'.*64-bit"):
        ingest([write_slice(tmp_path, synth_playlists[:10])], tmp_path / "store")
    synth_playlists[4][field] = 5 if field != "pid" else 4
    synth_playlists[6]["tracks"][1]["duration_ms"] = 2**64 - 1
    with pytest.raises(InputError, match=r"position 6.*tracks\[1\]\.duration_ms"):
        ingest([write_slice(tmp_path, synth_playlists[:10])], tmp_path / "store")


def test_bare_list_and_wrong_pos_values_are_warnings(synth_playlists, tmp_path, cli):
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(synth_playlists[:5]))
    shuffled = copy.deepcopy(synth_playlists[5:10])
    shuffled[1]["tracks"][0]["pos"] = 7
    shuffled[3]["tracks"][2]["pos"] = "2"
    result = cli("ingest", listed, write_slice(tmp_path / "s", shuffled, 5), "--out", tmp_path / "store",
                 "--no-progress", "--workers", "0")
    assert result.exit_code == 0, result.output
    warnings = Store.open(tmp_path / "store").manifest["warnings"]
    assert warnings == {"top_level_list": 1, "pos_mismatch": 2}
    assert _squash("1 file holding a bare JSON list") in _squash(result.stderr)
    assert _squash("2 playlists whose tracks' pos fields") in _squash(result.stderr)


def test_invalid_utf8_names_the_byte_offset(synth_playlists, tmp_path):
    data = json.dumps(slice_doc(synth_playlists[:5]), indent=2).encode()
    offset = data.index(b'"name"', 1000) + 9
    path = tmp_path / "mpd.slice.0-4.json"
    path.write_bytes(data[:offset] + b"\xff\xfe" + data[offset:])
    line = data.count(b"\n", 0, offset) + 1
    with pytest.raises(InputError, match=rf"not valid UTF-8 at byte {offset:,} \(line {line}\)"):
        ingest([path], tmp_path / "store")


def test_skip_invalid_prints_each_skip_once_without_advising_the_flag(synth_playlists, tmp_path, cli):
    synth_playlists[3]["pid"] = "x"
    (tmp_path / "mpd").mkdir()
    (tmp_path / "mpd" / "mpd.slice.9-9.json").write_text("{oops")
    write_slice(tmp_path / "mpd", synth_playlists[:9])
    result = cli("ingest", tmp_path / "mpd", "--out", tmp_path / "store", "--skip-invalid", "--no-progress")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("skipped:") == 2
    assert "--skip-invalid" not in result.stderr


def test_stores_follow_the_umask(synth_playlists, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        store = ingest([write_slice(tmp_path, synth_playlists[:5])], tmp_path / "store")
    finally:
        os.umask(old)
    assert oct(store.path.stat().st_mode & 0o777) == oct(0o755)
    assert {oct(p.stat().st_mode & 0o777) for p in store.path.iterdir()} == {oct(0o644)}


def test_misplaced_positions_counts_playlists_the_same_on_both_paths():
    lengths = [3, 2, 2]
    assert mpd.misplaced_positions([0, 1, 2, 0, 1, 0, 1], lengths) == 0
    assert mpd.misplaced_positions([0, 2, 2, 0, 1, 1, 0], lengths) == 2  # all ints: the int-array path
    assert mpd.misplaced_positions([0, None, 2, 0, 1, 1, 0], lengths) == 1  # absent pos is no mismatch
    assert mpd.misplaced_positions([0, 1, 2, 0, True, 0, 1], lengths) == 1  # a bool is not a position
    assert mpd.misplaced_positions([0, 1, 2, 0, 1, 0, 2**70], lengths) == 1  # beyond int64
    assert mpd.misplaced_positions([None] * 7, lengths) == 0
