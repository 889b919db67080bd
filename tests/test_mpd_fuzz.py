"""Fuzzing the MPD reader: a valid slice, mutated (truncated, values of the wrong type, keys deleted, huge
numbers, odd unicode), either ingests into exactly the store its fields say, or fails with a clean InputError
that names the file and where; never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings, strategies as st

from segue.data.ingest import ingest
from segue.errors import InputError

ODD_TEXT = ["", "\x00", "\ud800", "\udfff", "🎶", "\u202eevil", "e\u0301", "\ufeffbom", "a\nb", "𝔘𝔫𝔦", "\\u0000"]
HUGE = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**30]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.sampled_from(HUGE),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(ODD_TEXT), st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["track_uri", "pid", "x"]), st.sampled_from(["", "spotify:track:z", 1]), max_size=2),
)
WHERE = ("position", "line", "byte", "'playlists'", "no playlists were read", "empty")


def _base(playlists: list[dict]) -> dict:
    trimmed = [dict(p, tracks=p["tracks"][:4], num_tracks=min(4, len(p["tracks"]))) for p in playlists[:3]]
    return {"info": {"generated_on": "2017-12-03", "slice": "0-2", "version": "v1"}, "playlists": trimmed}


def _paths(doc) -> list[tuple]:
    """Every place a mutation can hit: the document's keys, each playlist and its keys, each track and its keys."""
    out = [("info",), ("playlists",)]
    for i, playlist in enumerate(doc["playlists"]):
        out.append(("playlists", i))
        out += [("playlists", i, key) for key in playlist]
        for j, track in enumerate(playlist["tracks"]):
            out.append(("playlists", i, "tracks", j))
            out += [("playlists", i, "tracks", j, key) for key in track]
    return out


@st.composite
def mutated(draw, base: dict) -> tuple[bytes, str]:
    doc = json.loads(json.dumps(base))
    paths = _paths(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(VALUES)
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed or replaced the way there
            pass
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2])))
    data = text.encode("utf-8", "surrogatepass")  # a raw lone surrogate is invalid UTF-8, as in a broken file
    if draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data, "mutated"


def _clean(value):
    """What the reader keeps of a string with a lone surrogate escape: the text with U+FFFD in the gap."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def _ingest_or_error(path: Path, out: Path, skip_invalid: bool):
    """The store, or None after checking the InputError names the file and where, and nothing was written."""
    try:
        return ingest([path], out, workers=0, skip_invalid=skip_invalid)
    except InputError as exc:
        message = str(exc)
        assert str(path) in message, message
        assert any(word in message for word in WHERE), message
        assert not out.exists()
        event(f"InputError (skip_invalid={skip_invalid})")
        return None


def test_mutated_slices_ingest_exactly_or_fail_cleanly(_synth_cache, assert_store_equals):
    base = _base(_synth_cache)

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=mutated(base))
    def check(case):
        data, _ = case
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "mpd.slice.0-2.json"
            path.write_bytes(data)
            strict = _ingest_or_error(path, Path(folder) / "strict", skip_invalid=False)
            lenient = _ingest_or_error(path, Path(folder) / "lenient", skip_invalid=True)
            if strict is None and lenient is None:
                return
            # Python's json reads bytes as the reader does: an encoded surrogate (CESU-8) is a lone surrogate
            doc = _clean(json.loads(data))
            playlists = doc if isinstance(doc, list) else doc["playlists"]
            if strict is not None:
                event("ingested")
                assert_store_equals(strict, playlists)
            # with --skip-invalid: exactly the playlists not listed as skipped, each skip with its position
            skipped = {s["position"] for s in lenient.manifest["skipped"]}
            assert None not in skipped and (strict is None) == bool(skipped)
            assert_store_equals(lenient, [p for i, p in enumerate(playlists) if i not in skipped])

    check()
