"""Submission files: what `make_submission` writes, what the checker rejects, and scoring them."""

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segue.data.split import load_split, make_split
from segue.data.store import build_store
from segue.data.synth import generate_playlists
from segue.errors import InputError
from segue.data.challenge_set import ChallengeSet, load_answers, load_challenge
from segue.evaluate.submission import read_submission, verify_submission, write_submission
from segue.evaluate import runner
from segue.evaluate.runner import evaluate_models, fill_to_k, make_submission, recommend_challenge, score_submission
from segue.models.base import get_model_class


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("challenge")
    store = build_store(generate_playlists(300, seed=2), root / "store")
    make_split(store, root / "split", per_category=3, seed=0)
    split = load_split(root / "split")
    model = get_model_class("popular")().fit(split.train_store())
    model.save(root / "popular")
    submission = root / "sub.csv.gz"
    make_submission(root / "popular", split.challenge_path, submission, team="team a", email="a@b.c", progress=False)
    return root, split, submission


def lines_of(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def write_lines(path, lines):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def test_submit_writes_a_valid_official_file(setup):
    root, split, submission = setup
    with open(submission, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    lines = lines_of(submission)
    assert lines[0] == "team_info,team a,main,a@b.c"
    assert len(lines) == 1 + len(split.challenge)
    assert verify_submission(submission, split.challenge) == []
    for line in lines[1:]:
        fields = line.split(",")
        assert len(fields) == 501 and len(set(fields[1:])) == 500


def test_plain_text_submission_with_comments_and_spaces_is_accepted(setup, tmp_path):
    root, split, submission = setup
    lines = lines_of(submission)
    plain = ["# a comment", "", lines[0].replace(",", " , ")] + lines[1:]
    path = write_lines(tmp_path / "sub.csv", plain)
    assert verify_submission(path, split.challenge) == []


def _mutate(lines, row, fn):
    fields = lines[row].split(",")
    return lines[:row] + [",".join(fn(fields))] + lines[row + 1 :]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize(
    ("kind", "make", "message"),
    [
        ("no team_info", lambda ls, ch: ls[1:], r"line 1: no team_info"),
        ("missing pid", lambda ls, ch: ls[:-1], r"end of file: 1 challenge pid\(s\) missing"),
        ("499 tracks", lambda ls, ch: _mutate(ls, 2, lambda f: f[:-1]), r"line 3 \(pid \d+\): 499 tracks"),
        ("duplicate track", lambda ls, ch: _mutate(ls, 2, lambda f: f[:-1] + [f[1]]), r"line 3 .*1 duplicate"),
        ("seed track", lambda ls, ch: _mutate(ls, 1 + int(np.flatnonzero(np.diff(ch.seed_indptr) > 0)[0]),
                                              lambda f: f[:-1] + [ch.seeds_of(int(np.flatnonzero(
                                                  np.diff(ch.seed_indptr) > 0)[0]))[0]]), r"seed track"),
        ("malformed uri", lambda ls, ch: _mutate(ls, 2, lambda f: f[:-1] + ["spotify:track:short"]),
         r"line 3 .*malformed track URI"),
        ("unknown pid", lambda ls, ch: ls + [",".join(["99999999"] + ls[1].split(",")[1:])],
         r"pid 99999999\): pid is not in the challenge set"),
        ("repeated pid", lambda ls, ch: ls + [ls[1]], r"pid already given on line 2"),
        ("bad track field", lambda ls, ch: ["team_info,x,bonus,a@b.c"] + ls[1:], r"line 1: challenge track 'bonus'"),
    ],
)
def test_verify_rejects_each_kind_of_bad_submission(setup, tmp_path, suffix, kind, make, message):
    root, split, submission = setup
    bad = write_lines(tmp_path / f"bad{suffix}", make(lines_of(submission), split.challenge))
    errors = verify_submission(bad, split.challenge)
    assert errors, kind
    assert any(__import__("re").search(message, e) for e in errors), errors


def test_write_submission_rejects_commas_in_team_info(tmp_path):
    with pytest.raises(InputError, match="comma"):
        write_submission(tmp_path / "x.csv", [1], [["a"]], team="a,b")


def test_fill_to_k_pads_from_popularity_without_seeds_or_repeats():
    recs = np.array([[5, 5, -1, 2], [0, 1, 2, 3]])
    seed_indptr, seed_indices = np.array([0, 1, 1]), np.array([7])
    popularity = np.array([7, 2, 9, 8, 6, 5, 4, 3, 1, 0])
    out = fill_to_k(recs, seed_indptr, seed_indices, popularity, k=4)
    assert out.tolist() == [[5, 2, 9, 8], [0, 1, 2, 3]]
    with pytest.raises(InputError, match="too few"):
        fill_to_k(recs, seed_indptr, seed_indices, popularity[:3], k=6)


def test_score_submission_agrees_with_evaluate(setup):
    root, split, submission = setup
    evaluated = evaluate_models([root / "popular"], split.path, progress=False)["popular"]
    scored = score_submission(submission, split.answers_path, split.challenge_path, store=split.train_path)
    for metric, value in evaluated["overall"].items():
        assert scored["overall"][metric] == pytest.approx(value), metric
    assert scored["per_category"].keys() == evaluated["per_category"].keys() == {str(c) for c in range(1, 11)}
    without_store = score_submission(submission, split.answers_path, split.challenge_path)
    assert without_store["overall"]["r_precision"] == pytest.approx(evaluated["overall"]["r_precision"])
    assert without_store["overall"]["r_precision_artist"] is None
    no_challenge = score_submission(submission, split.answers_path)
    assert list(no_challenge["per_category"]) == ["0"]


@pytest.mark.parametrize("model_name", ["popular", "cooccur"])
def test_playlist_batches_give_the_same_results_as_one_batch(setup, monkeypatch, model_name):
    root, split, _ = setup
    train = split.train_store()
    model = get_model_class(model_name)().fit(train)
    assert len(split.challenge) == 30
    whole, _ = recommend_challenge(model, train, split.challenge, progress=False)
    monkeypatch.setattr(runner, "BATCH_PLAYLISTS", 7)  # 30 playlists: batches of 7, 7, 7, 7, 2
    batched, _ = recommend_challenge(model, train, split.challenge, progress=False)
    assert np.array_equal(whole, batched)
    assert (whole[:, 0] >= 0).all()


def test_recommend_challenge_tells_models_which_playlists_have_random_seeds(setup, monkeypatch):
    _, split, _ = setup
    challenge = split.challenge
    random = np.isin(challenge.categories, (8, 10))
    assert random.any() and not random.all()
    np.testing.assert_array_equal(challenge.first_seeds(), ~random)
    train = split.train_store()
    model = get_model_class("popular")().fit(train)
    seen, recommend = [], model.recommend
    monkeypatch.setattr(model, "recommend", lambda *a, **kw: seen.append(kw["first_seeds"]) or recommend(*a, **kw))
    monkeypatch.setattr(runner, "BATCH_PLAYLISTS", 7)
    recommend_challenge(model, train, challenge, progress=False)
    np.testing.assert_array_equal(np.concatenate(seen), ~random)


def test_first_seeds_reads_the_seed_positions(tmp_path):
    def playlist(pid, tracks):
        return {"pid": pid, "name": "x", "num_holdouts": 5, "num_samples": len(tracks),
                "num_tracks": len(tracks) + 5, "tracks": tracks}

    unplaced = {k: v for k, v in seed(0).items() if k != "pos"}
    data = challenge_json([
        playlist(1, [seed(0), seed(1), seed(2)]),  # the first three
        playlist(2, [seed(0, pos=4), seed(1, pos=9)]),  # a random sample
        playlist(3, [seed(0, pos=1), seed(1, pos=0)]),  # the first two, out of order: not a playlist's start
        playlist(4, [unplaced, dict(unplaced, track_uri=seed(1)["track_uri"])]),  # no positions: its start
        playlist(5, [unplaced, seed(1, pos=8)]),
        playlist(6, []),  # title only
    ])
    challenge = load_challenge(write_json_file(tmp_path / "c.json", data), use_hints=False)
    assert challenge.first_seeds().tolist() == [True, False, False, True, False, True]


def test_read_submission_reports_garbage_pid_lines(tmp_path):
    path = write_lines(tmp_path / "s.csv", ["team_info,t,main,e@x", "abc,spotify:track:x"])
    parsed, errors = read_submission(path)
    assert parsed.pids == [] and any("line 2" in e and "not a pid" in e for e in errors)


def test_load_challenge_errors_name_the_file(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="c.json"):
        load_challenge(bad)
    bad.write_text('{"playlists": [{"name": "x"}]}')
    with pytest.raises(InputError, match=r"playlists\[0\].*pid"):
        load_challenge(bad)


def test_load_challenge_keeps_titles_with_half_an_emoji(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"date": "2018-01-16", "version": "v1", "playlists": [{"pid": 5, "name": "road \\ud83d", '
                    '"num_holdouts": 10, "num_samples": 0, "num_tracks": 10, "tracks": []}]}')
    challenge = load_challenge(path, use_hints=False)
    assert challenge.names == ["road \ufffd"] and challenge.pids.tolist() == [5]


# ---- bad challenge sets and submissions: a clear InputError naming file, position and field -------------
def challenge_json(playlists):
    return {"date": "2018-01-16", "version": "v1", "playlists": playlists}


def seed(i, pos=None):
    return {"pos": i if pos is None else pos, "track_uri": f"spotify:track:{i:022d}", "track_name": "s",
            "artist_name": "a", "artist_uri": "spotify:artist:x", "album_uri": "spotify:album:y",
            "album_name": "b", "duration_ms": 1000}


VALID_CHALLENGE = challenge_json([
    {"pid": 10, "name": "road trip", "num_holdouts": 7, "num_samples": 2, "num_tracks": 9,
     "tracks": [seed(0), seed(1)]},
    {"pid": 11, "num_holdouts": 5, "num_samples": 5, "num_tracks": 10, "tracks": [seed(i) for i in range(5)]},
    {"pid": 12, "name": "chill ☕ ", "num_holdouts": 20, "num_samples": 0, "num_tracks": 20, "tracks": []},
])


def write_json_file(path, data):
    import json

    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_an_empty_challenge_set_is_rejected(tmp_path):
    path = write_json_file(tmp_path / "c.json", challenge_json([]))
    with pytest.raises(InputError, match=r"c\.json: the challenge set has no playlists"):
        load_challenge(path)
    with pytest.raises(InputError, match="no playlists"):
        verify_submission(tmp_path / "x.csv", ChallengeSet.from_pids([]))
    with pytest.raises(InputError, match="answers file is empty"):
        load_answers(write_json_file(tmp_path / "a.json", {}))


@pytest.mark.parametrize(("field", "value"), [
    ("num_samples", "ten"), ("num_samples", 2**63), ("num_holdouts", -1), ("num_tracks", 1.5),
    ("num_samples", True), ("pid", "10"), ("pid", 2**64), ("name", 5), ("tracks", {"a": 1}),
])
def test_a_wrong_type_or_huge_number_names_file_position_and_field(tmp_path, field, value):
    import copy

    data = copy.deepcopy(VALID_CHALLENGE)
    data["playlists"][1][field] = value
    path = write_json_file(tmp_path / "c.json", data)
    with pytest.raises(InputError) as caught:
        load_challenge(path, use_hints=False)
    message = str(caught.value)
    assert str(path) in message and "playlists[1]" in message and f"'{field}'" in message


def test_inconsistent_counts_are_named(tmp_path):
    import copy

    data = copy.deepcopy(VALID_CHALLENGE)
    data["playlists"][0]["num_samples"] = 3
    with pytest.raises(InputError, match=r"playlists\[0\] \(pid 10\): num_samples is 3 but the playlist has 2"):
        load_challenge(write_json_file(tmp_path / "c.json", data), use_hints=False)
    data = copy.deepcopy(VALID_CHALLENGE)
    data["playlists"][0]["num_tracks"] = 8
    with pytest.raises(InputError, match=r"playlists\[0\].*num_tracks is 8"):
        load_challenge(write_json_file(tmp_path / "c.json", data), use_hints=False)


def _mutations():
    """Hypothesis strategy: (kind, path choice, replacement) applied to VALID_CHALLENGE's JSON."""
    from hypothesis import strategies as st

    odd = st.sampled_from(["", "\u0000", "\ud83d", "\U0001f3b5" * 3, "é\u0301", "\u202e", "NaN", "-1", "1e400"])
    values = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                       odd, st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                   max_size=2))
    return st.tuples(st.sampled_from(["delete", "replace", "truncate", "unicode"]), st.integers(0, 10**6), values)


def _all_paths(node, prefix=()):
    """Every (container path, key) in a JSON tree, in a stable order."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        out.append((prefix, key))
        out.extend(_all_paths(child, prefix + (key,)))
    return out


def _mutated(kind, choice, value):
    import copy
    import json

    data = copy.deepcopy(VALID_CHALLENGE)
    paths = _all_paths(data)
    prefix, key = paths[choice % len(paths)]
    parent = data
    for step in prefix:
        parent = parent[step]
    if kind == "delete":
        del parent[key]
    elif kind == "replace":
        parent[key] = value
    elif kind == "unicode" and isinstance(parent[key], str):
        parent[key] = parent[key] + (value if isinstance(value, str) else "\ud83d")
    text = json.dumps(data, allow_nan=True)
    if kind == "truncate":
        text = text[: choice % len(text)]
    return data, text.encode("utf-8", errors="surrogatepass")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_mutations())
def test_fuzzed_challenge_sets_parse_correctly_or_fail_cleanly(tmp_path, mutation):
    data, raw = _mutated(*mutation)
    path = tmp_path / "fuzz.json"
    path.write_bytes(raw)
    try:
        parsed = load_challenge(path, use_hints=False)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    # A parse must be what the (mutated) JSON says (a lone surrogate escape reads as U+FFFD, by design).
    import re

    playlists = data["playlists"]
    assert parsed.pids.tolist() == [p["pid"] for p in playlists]
    assert parsed.seed_uris == [re.sub("[\ud800-\udfff]", "\ufffd", t["track_uri"])
                                for p in playlists for t in p.get("tracks", [])]
    assert [n is None for n in parsed.names] == [p.get("name") is None for p in playlists]
    assert parsed.num_samples.tolist() == [len(p.get("tracks", [])) for p in playlists]


def _submission_lines():
    uris = [f"spotify:track:{i:022d}" for i in range(1000, 1006)]
    return ["team_info,team a,main,a@b.c", "10," + ",".join(uris[:3]), "11," + ",".join(uris[3:])]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_mutations(), st.booleans())
def test_fuzzed_submissions_are_read_or_fail_cleanly(tmp_path, mutation, gzipped):
    kind, choice, value = mutation
    text = "\n".join(_submission_lines()) + "\n"
    if kind == "truncate":
        text = text[: choice % len(text)]
    else:
        cut = choice % len(text)
        insert = value if isinstance(value, str) else str(value)
        text = text[:cut] + ("," if kind == "delete" else "") + insert + text[cut + (kind == "replace"):]
    raw = text.encode("utf-8", errors="surrogatepass")
    path = tmp_path / ("s.csv.gz" if gzipped else "s.csv")
    if gzipped:
        raw = gzip.compress(raw)
        if kind == "truncate":
            raw = raw[: max(2, choice % len(raw))]  # a damaged gzip stream
    path.write_bytes(raw)
    challenge = ChallengeSet.from_pids([10, 11])
    try:
        parsed, errors = read_submission(path)
        failures = verify_submission(path, challenge, n_tracks=3)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    assert all(isinstance(p, int) and 0 <= p for p in parsed.pids)
    assert all(e.startswith(("line ", "end of file")) for e in failures), failures
    assert set(errors) <= set(failures)
