"""Read and validate playlists in the Million Playlist Dataset (MPD) JSON format.

Only ``pid`` and each track's ``track_uri`` are required; every other field is optional, because public
MPD subsets strip fields. Wrong types are errors that name the file, the playlist's position and pid, and
the field. The parser turns one slice into compact columns (:class:`ParsedPlaylists`) with tracks as
slice-local indices, so workers can parse in parallel and the main process only merges vocabularies.

Three paths give identical columns: :func:`parse_document_fast` decodes a file's bytes straight into typed
structs (msgspec) when everything in it is valid; otherwise :func:`parse_playlists` takes the decoded
dicts, columnises them at C speed when it can, and else checks playlist by playlist, which alone words
errors and skips bad playlists.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import attrgetter, is_not, itemgetter
from typing import Annotated, Any

import msgspec
import numpy as np
import pyarrow as pa

from segue.errors import InputError

PLAYLIST_INT_FIELDS = ("modified_at", "num_followers", "num_edits")
PLAYLIST_STR_FIELDS = ("name", "description")
TRACK_STR_FIELDS = ("track_name", "artist_uri", "artist_name", "album_uri", "album_name")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what Parquet int64 holds
_SKIP_ADVICE = re.compile(r"(?:^|(?<=[.?!]) )[^.?!]*--skip-invalid[^.]*\.")
_APOSTROPHES = re.compile(r"['\u2019`]")
_NON_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def normalize_title(name: str | None) -> str:
    """Normalise a playlist title as Spotify's stats script does, extended to Unicode.

    Lower-case, drop apostrophes ("90's" -> "90s"), turn other punctuation and symbols (emoji too) into
    spaces, collapse runs of white space, strip. Letters and digits of any script are kept.
    """
    if not name:
        return ""
    name = unicodedata.normalize("NFKC", name).lower()
    name = _APOSTROPHES.sub("", name)
    name = _NON_WORD.sub(" ", name)
    return _SPACES.sub(" ", name).strip()


@dataclass
class ParsedPlaylists:
    """One slice's playlists as columns; ``entry_track`` indexes the slice-local track table."""

    source: str
    pid: list[int] = field(default_factory=list)
    name: list[str | None] = field(default_factory=list)
    description: list[str | None] = field(default_factory=list)
    collaborative: list[bool | None] = field(default_factory=list)
    modified_at: list[int | None] = field(default_factory=list)
    num_followers: list[int | None] = field(default_factory=list)
    num_edits: list[int | None] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    entry_track: list[int] | np.ndarray = field(default_factory=list)  # int32 array from the fast path
    # slice-local track table, one row per distinct track_uri, metadata from its first occurrence; the fast
    # path gives Arrow arrays (cheap to send between processes), the careful path lists: see column()
    track_uri: list[str] = field(default_factory=list)
    track_name: list[str | None] = field(default_factory=list)
    artist_uri: list[str | None] = field(default_factory=list)
    artist_name: list[str | None] = field(default_factory=list)
    album_uri: list[str | None] = field(default_factory=list)
    album_name: list[str | None] = field(default_factory=list)
    duration_ms: list[int | None] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)

    @property
    def n_playlists(self) -> int:
        return len(self.pid)

    def column(self, name: str) -> list:
        """A column as a Python list, whether it is stored as a list or an Arrow array."""
        values = getattr(self, name)
        return values.to_pylist() if isinstance(values, pa.Array) else list(values)

    def entries(self) -> np.ndarray:
        return np.asarray(self.entry_track, dtype=np.int32)

    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=out[1:])
        return out


def _is_int(value) -> bool:
    # bool is a subclass of int and is not a valid count; beyond int64 Parquet cannot hold it
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def _int64_column(values: list) -> bool:
    """Whether every non-None value is an int within int64 (types checked at C speed, then min/max)."""
    if not _types_within(values, _INT_OR_NONE):
        return False
    present = list(compress(values, map(is_not, values, repeat(None))))
    return not present or (INT64_MIN <= min(present) and max(present) <= INT64_MAX)


def skip_reason(message: str) -> str:
    """A skipped item's reason: its error without the advice to pass --skip-invalid (it was passed)."""
    return _SKIP_ADVICE.sub("", message).strip()


def misplaced_positions(pos: list, lengths) -> int:
    """How many playlists hold a track whose ``pos`` is given and is not its index (0, 1, 2, ...).

    ``pos`` is every track's value (None where absent) with playlists concatenated; ingest ignores it
    (tracks keep file order) and only warns, as wrong values hint at an edited or merged file.
    """
    if not pos:
        return 0
    kinds = np.array(list(map(type, pos)), dtype=object)
    ints = kinds == int
    given = kinds != _NONE
    if not given.any():
        return 0
    lengths = np.asarray(lengths, dtype=np.int64)
    row = np.repeat(np.arange(len(lengths)), lengths)
    expected = np.arange(len(pos), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    values = np.array(pos, dtype=object)[ints]
    try:
        found = values.astype(np.int64)
    except OverflowError:  # beyond int64: certainly not a position
        found = np.array([v if INT64_MIN <= v <= INT64_MAX else -1 for v in values.tolist()], dtype=np.int64)
    wrong = given & ~ints
    wrong[ints] = found != expected[ints]
    return len(np.unique(row[wrong]))


def _where(source: str, position: int, pid) -> str:
    pid_text = f"pid {pid}" if pid is not None else "pid unknown"
    return f"{source}: playlist at position {position} ({pid_text})"


def _bad(source: str, position: int, pid, field_name: str, value, expected: str) -> InputError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InputError(
        f"{_where(source, position, pid)}: field '{field_name}' should be {expected}, got {shown}. "
        "Fix the file, or pass --skip-invalid to skip such playlists."
    )


def _collaborative(value, source, position, pid) -> bool | None:
    if value is None:
        return None
    if value == "true" or value is True:
        return True
    if value == "false" or value is False:
        return False
    raise _bad(source, position, pid, "collaborative", value, 'the string "true" or "false"')


def parse_playlists(
    playlists, source: str, *, skip_invalid: bool = False, position_offset: int = 0, challenge: bool = False
) -> ParsedPlaylists:
    """Validate and columnise a list of MPD playlist objects.

    ``source`` names the file in messages. With ``skip_invalid`` a bad playlist is recorded in
    ``skipped`` and left out; otherwise the first one raises :class:`InputError`. With ``challenge``
    the playlists come from a challenge set, whose ``num_tracks`` counts held-out tracks too, so the
    track list is checked against ``num_samples`` instead.

    A columnar fast path handles the common case (every playlist valid); on any doubt the careful
    per-playlist path below runs instead, and it alone decides what is an error.
    """
    if not isinstance(playlists, list):
        raise InputError(f"{source}: 'playlists' should be a JSON array, got {type(playlists).__name__}.")
    count_field = "num_samples" if challenge else "num_tracks"
    fast = _parse_fast(playlists, source, count_field)
    if fast is not None:
        return fast
    out = ParsedPlaylists(source=source)
    local: dict[str, int] = {}
    seen_pids: set[int] = set()
    warnings = out.warnings
    for position, playlist in enumerate(playlists, start=position_offset):
        pid = playlist.get("pid") if isinstance(playlist, dict) else None
        try:
            row = _parse_one(playlist, source, position, seen_pids, local, out, count_field)
        except InputError as exc:
            if not skip_invalid:
                raise
            out.skipped.append({"file": source, "position": position, "pid": pid, "reason": skip_reason(str(exc))})
            continue
        seen_pids.add(row[0])
        (pid, name, description, collaborative, modified_at, followers, edits, entries, declared, pos) = row
        out.pid.append(pid)
        out.name.append(name)
        out.description.append(description)
        out.collaborative.append(collaborative)
        out.modified_at.append(modified_at)
        out.num_followers.append(followers)
        out.num_edits.append(edits)
        out.lengths.append(len(entries))
        out.entry_track.extend(entries)
        if declared is not None and declared != len(entries):
            key = f"{count_field}_mismatch"
            warnings[key] = warnings.get(key, 0) + 1
        if misplaced_positions(pos, [len(pos)]):
            warnings["pos_mismatch"] = warnings.get("pos_mismatch", 0) + 1
    return out


def _parse_one(playlist, source, position, seen_pids, local, out: ParsedPlaylists, count_field="num_tracks"):
    if not isinstance(playlist, dict):
        raise InputError(f"{source}: playlist at position {position} is not a JSON object.")
    pid = playlist.get("pid")
    if pid is None:
        raise InputError(f"{_where(source, position, None)}: required field 'pid' is missing.")
    if not _is_int(pid) or pid < 0:
        raise _bad(source, position, pid, "pid", pid, "a non-negative 64-bit integer")
    if pid in seen_pids:
        raise InputError(
            f"{_where(source, position, pid)}: duplicate pid {pid} in the same file. "
            "pids must be unique; fix the file or pass --skip-invalid."
        )
    text = {}
    for name in PLAYLIST_STR_FIELDS:
        value = playlist.get(name)
        if value is not None and type(value) is not str:
            raise _bad(source, position, pid, name, value, "a string")
        text[name] = value
    ints = {}
    for name in PLAYLIST_INT_FIELDS:
        value = playlist.get(name)
        if value is not None and not _is_int(value):
            raise _bad(source, position, pid, name, value, "a 64-bit integer")
        ints[name] = value
    collaborative = _collaborative(playlist.get("collaborative"), source, position, pid)
    for name in dict.fromkeys(("num_tracks", count_field)):
        declared = playlist.get(name)
        if declared is not None and not _is_int(declared):
            raise _bad(source, position, pid, name, declared, "a 64-bit integer")
    tracks = playlist.get("tracks")
    if tracks is None:
        raise InputError(f"{_where(source, position, pid)}: required field 'tracks' is missing.")
    if not isinstance(tracks, list):
        raise _bad(source, position, pid, "tracks", tracks, "a list of track objects")

    # First pass validates and maps every track, but only touches slice-local state after the whole
    # playlist is known to be valid, so a skipped playlist leaves no tracks behind.
    entries: list[int] = []
    new_tracks: dict[str, dict] = {}
    n_local = len(local)
    for i, track in enumerate(tracks):
        if not isinstance(track, dict):
            raise InputError(f"{_where(source, position, pid)}: tracks[{i}] is not a JSON object.")
        uri = track.get("track_uri")
        if type(uri) is not str or not uri:
            what = "is missing" if uri is None else f"should be a non-empty string, got {uri!r}"
            raise InputError(
                f"{_where(source, position, pid)}: tracks[{i}].track_uri {what}. "
                "Every track needs a track_uri; fix the file or pass --skip-invalid."
            )
        index = local.get(uri)
        if index is None:
            pending = new_tracks.get(uri)
            if pending is None:
                pending = _track_metadata(track, source, position, pid, i)
                pending["index"] = n_local + len(new_tracks)
                new_tracks[uri] = pending
            index = pending["index"]
        entries.append(index)
    for uri, meta in new_tracks.items():
        local[uri] = meta["index"]
        out.track_uri.append(uri)
        out.track_name.append(meta["track_name"])
        out.artist_uri.append(meta["artist_uri"])
        out.artist_name.append(meta["artist_name"])
        out.album_uri.append(meta["album_uri"])
        out.album_name.append(meta["album_name"])
        out.duration_ms.append(meta["duration_ms"])
    return (
        pid,
        text["name"],
        text["description"],
        collaborative,
        ints["modified_at"],
        ints["num_followers"],
        ints["num_edits"],
        entries,
        declared,
        [track.get("pos") for track in tracks],
    )


def _track_metadata(track: dict, source, position, pid, i) -> dict:
    meta = {}
    for name in TRACK_STR_FIELDS:
        value = track.get(name)
        if value is not None and type(value) is not str:
            raise _bad(source, position, pid, f"tracks[{i}].{name}", value, "a string")
        meta[name] = value
    duration = track.get("duration_ms")
    if duration is not None and not _is_int(duration):
        raise _bad(source, position, pid, f"tracks[{i}].duration_ms", duration, "a 64-bit integer")
    meta["duration_ms"] = duration
    return meta


_NONE = type(None)
_STR_OR_NONE = frozenset({str, _NONE})
_INT_OR_NONE = frozenset({int, _NONE})
_COLLABORATIVE = {"true": True, "false": False, True: True, False: False, None: None}


def _types_within(values: list, allowed: frozenset) -> bool:
    return set(map(type, values)) <= allowed


def _column(objects: list[dict], key: str) -> list:
    """``[o.get(key) for o in objects]`` at C speed (map over the builtin, no Python frame per item)."""
    return list(map(dict.get, objects, repeat(key)))


def _pick(values: list, positions: list[int]) -> list:
    if len(positions) == len(values):  # every position, in order (positions are increasing)
        return values
    if len(positions) == 1:
        return [values[positions[0]]]
    return list(itemgetter(*positions)(values)) if positions else []


def _parse_fast(playlists: list, source: str, count_field: str) -> ParsedPlaylists | None:
    """Columnise a slice whose playlists are all valid, without a Python loop per track.

    Returns None as soon as anything is off (a missing key, a wrong type, a duplicate pid, an empty
    URI); the careful path then finds, reports or skips the offending playlist. Every check here is at
    least as strict as the careful path, so both give identical results on the input this accepts.
    """
    try:
        pids = list(map(itemgetter("pid"), playlists))
        track_lists = list(map(itemgetter("tracks"), playlists))
    except (KeyError, TypeError):  # a playlist without pid/tracks, or not a JSON object
        return None
    if set(map(type, pids)) - {int} or (pids and (min(pids) < 0 or max(pids) > INT64_MAX)):
        return None
    if len(set(pids)) != len(pids):
        return None
    if set(map(type, track_lists)) - {list}:
        return None
    out = ParsedPlaylists(source=source, pid=pids)
    for name in PLAYLIST_STR_FIELDS:
        column = _column(playlists, name)
        if not _types_within(column, _STR_OR_NONE):
            return None
        setattr(out, name, column)
    for name in PLAYLIST_INT_FIELDS:
        column = _column(playlists, name)
        if not _int64_column(column):
            return None
        setattr(out, name, column)
    collaborative = _column(playlists, "collaborative")
    if not _types_within(collaborative, frozenset({str, bool, _NONE})):
        return None
    try:
        out.collaborative = [_COLLABORATIVE[v] for v in collaborative]
    except KeyError:
        return None
    declared = {name: _column(playlists, name) for name in dict.fromkeys(("num_tracks", count_field))}
    if not all(_int64_column(column) for column in declared.values()):
        return None

    all_tracks = list(chain.from_iterable(track_lists))
    try:
        uris = list(map(itemgetter("track_uri"), all_tracks))
    except (KeyError, TypeError):  # a track without track_uri, or not a JSON object
        return None
    if set(map(type, uris)) - {str} or "" in uris:
        return None
    if not _fill_tracks(out, list(map(len, track_lists)), all_tracks, uris, _column, check_types=True):
        return None
    _count_mismatches(out, declared[count_field], count_field)
    return out


def _fill_tracks(out: ParsedPlaylists, lengths: list[int], all_tracks: list, uris: list[str], column,
                 check_types: bool) -> bool:
    """Set the entries and the slice-local track table (metadata from each URI's first occurrence)."""
    # dictionary_encode numbers distinct URIs in order of first appearance, as the careful path does
    encoded = pa.array(uris, pa.string()).dictionary_encode()
    entries = encoded.indices.to_numpy().astype(np.int32, copy=False)
    _, first = np.unique(entries, return_index=True)
    new_tracks = _pick(all_tracks, first.tolist())
    track_columns = {}
    for name in TRACK_STR_FIELDS:
        values = column(new_tracks, name)
        if check_types and not _types_within(values, _STR_OR_NONE):
            return False
        track_columns[name] = values
    durations = column(new_tracks, "duration_ms")
    if check_types and not _int64_column(durations):
        return False
    out.lengths = lengths
    out.entry_track = entries
    out.track_uri = encoded.dictionary
    for name, values in track_columns.items():
        setattr(out, name, pa.array(values, pa.string()))
    out.duration_ms = pa.array(durations, pa.int64())
    misplaced = misplaced_positions(column(all_tracks, "pos"), lengths)
    if misplaced:
        out.warnings["pos_mismatch"] = misplaced
    return True


def _count_mismatches(out: ParsedPlaylists, declared: list, count_field: str) -> None:
    mismatches = sum(1 for d, n in zip(declared, out.lengths) if d is not None and d != n)
    if mismatches:
        out.warnings[f"{count_field}_mismatch"] = mismatches


# ---- typed decoding straight from the bytes ------------------------------------------------------------
# msgspec decodes into these structs and checks every type in C while it parses (about twice as fast as
# orjson building dicts, and the type checks come free). Anything they reject sends the file down the
# orjson + careful path, which alone words the error, so both paths accept exactly the same input.

_Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]


class _Track(msgspec.Struct, gc=False):
    track_uri: Annotated[str, msgspec.Meta(min_length=1)]
    track_name: str | None = None
    artist_uri: str | None = None
    artist_name: str | None = None
    album_uri: str | None = None
    album_name: str | None = None
    duration_ms: _Int64 | None = None
    pos: Any = None  # only checked, for a warning: any value keeps the fast path


class _Playlist(msgspec.Struct, gc=False):
    pid: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    tracks: list[_Track]
    name: str | None = None
    description: str | None = None
    collaborative: str | bool | None = None
    modified_at: _Int64 | None = None
    num_followers: _Int64 | None = None
    num_edits: _Int64 | None = None
    num_tracks: _Int64 | None = None
    num_samples: _Int64 | None = None
    num_holdouts: _Int64 | None | msgspec.UnsetType = msgspec.UNSET


class _Document(msgspec.Struct, gc=False):
    playlists: list[_Playlist]
    info: Any = msgspec.UNSET
    date: Any = msgspec.UNSET


_DOCUMENT_DECODER = msgspec.json.Decoder(_Document)


def _attribute_column(objects: list, name: str) -> list:
    return list(map(attrgetter(name), objects))


def document_kind(has_info: bool, has_date: bool, first_has_holdouts: bool) -> str:
    """``challenge`` for a challenge set (no ``info``; a ``date`` or playlists with ``num_holdouts``)."""
    return "challenge" if not has_info and (has_date or first_has_holdouts) else "slice"


def parse_document_fast(data: bytes, source: str) -> tuple[str, ParsedPlaylists] | None:
    """Decode and columnise a whole slice or challenge-set file whose playlists are all valid.

    Returns ``(kind, parsed)``, or None when anything is unusual (invalid JSON, a wrong type, a missing
    required field, a duplicate pid, a top-level array): the caller then takes the orjson path, which
    reports or skips exactly what is wrong.
    """
    try:
        doc = _DOCUMENT_DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    playlists = doc.playlists
    kind = document_kind(doc.info is not msgspec.UNSET, doc.date is not msgspec.UNSET,
                         bool(playlists) and playlists[0].num_holdouts is not msgspec.UNSET)
    pids = _attribute_column(playlists, "pid")
    if len(set(pids)) != len(pids):
        return None
    try:
        collaborative = [_COLLABORATIVE[v] for v in _attribute_column(playlists, "collaborative")]
    except KeyError:  # a string other than "true"/"false"
        return None
    out = ParsedPlaylists(source=source, pid=pids, collaborative=collaborative)
    for name in (*PLAYLIST_STR_FIELDS, *PLAYLIST_INT_FIELDS):
        setattr(out, name, _attribute_column(playlists, name))
    track_lists = _attribute_column(playlists, "tracks")
    all_tracks = list(chain.from_iterable(track_lists))
    uris = _attribute_column(all_tracks, "track_uri")
    _fill_tracks(out, list(map(len, track_lists)), all_tracks, uris, _attribute_column, check_types=False)
    count_field = "num_samples" if kind == "challenge" else "num_tracks"
    _count_mismatches(out, _attribute_column(playlists, count_field), count_field)
    return kind, out
