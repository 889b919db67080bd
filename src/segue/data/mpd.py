"""Read and validate playlists in the Million Playlist Dataset (MPD) JSON format.

Only ``pid`` and each track's ``track_uri`` are required; every other field is optional, because public
MPD subsets strip fields. Wrong types are errors that name the file, the playlist's position and pid, and
the field. The parser turns one slice into compact columns (:class:`ParsedPlaylists`) with tracks as
slice-local indices, so workers can parse in parallel and the main process only merges vocabularies.

Three paths give identical columns: :func:`parse_document_fast` reads a file's bytes straight into Arrow
columns (Arrow's JSON reader, no Python object per playlist or track) when everything in it is valid;
otherwise :func:`parse_playlists` takes the dicts orjson decoded, columnises them at C speed when it can,
and else checks playlist by playlist, which alone words errors and skips bad playlists.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import is_not, itemgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

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
    """One slice's playlists as columns; ``entry_track`` indexes the slice-local track table.

    The columnar path gives Arrow arrays (and numpy ``lengths``/``entry_track``: cheap to send between
    processes, no Python object per value), the dict paths lists; :meth:`column` reads either as a list.
    """

    source: str
    pid: list[int] | pa.Array = field(default_factory=list)
    name: list[str | None] | pa.Array = field(default_factory=list)
    description: list[str | None] | pa.Array = field(default_factory=list)
    collaborative: list[bool | None] | pa.Array = field(default_factory=list)
    modified_at: list[int | None] | pa.Array = field(default_factory=list)
    num_followers: list[int | None] | pa.Array = field(default_factory=list)
    num_edits: list[int | None] | pa.Array = field(default_factory=list)
    lengths: list[int] | np.ndarray = field(default_factory=list)
    entry_track: list[int] | np.ndarray = field(default_factory=list)
    # slice-local track table, one row per distinct track_uri, metadata from its first occurrence
    track_uri: list[str] | pa.Array = field(default_factory=list)
    track_name: list[str | None] | pa.Array = field(default_factory=list)
    artist_uri: list[str | None] | pa.Array = field(default_factory=list)
    artist_name: list[str | None] | pa.Array = field(default_factory=list)
    album_uri: list[str | None] | pa.Array = field(default_factory=list)
    album_name: list[str | None] | pa.Array = field(default_factory=list)
    duration_ms: list[int | None] | pa.Array = field(default_factory=list)
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
    lengths = np.asarray(lengths, dtype=np.int64)
    row = np.repeat(np.arange(len(lengths)), lengths)
    expected = np.arange(len(pos), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if set(map(type, pos)) == {int}:  # every file we know: one int array, no object arrays (4x faster)
        try:
            return len(np.unique(row[np.array(pos, dtype=np.int64) != expected]))
        except OverflowError:  # beyond int64: the general way below words it
            pass
    kinds = np.array(list(map(type, pos)), dtype=object)
    ints = kinds == int
    given = kinds != _NONE
    if not given.any():
        return 0
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
    if not _fill_tracks(out, list(map(len, track_lists)), all_tracks, uris):
        return None
    _count_mismatches(out, declared[count_field], count_field)
    return out


def _fill_tracks(out: ParsedPlaylists, lengths: list[int], all_tracks: list[dict], uris: list[str]) -> bool:
    """Set the entries and the slice-local track table (metadata from each URI's first occurrence)."""
    # dictionary_encode numbers distinct URIs in order of first appearance, as the careful path does
    encoded = pa.array(uris, pa.string()).dictionary_encode()
    entries = encoded.indices.to_numpy().astype(np.int32, copy=False)
    _, first = np.unique(entries, return_index=True)
    new_tracks = _pick(all_tracks, first.tolist())
    track_columns = {}
    for name in TRACK_STR_FIELDS:
        values = _column(new_tracks, name)
        if not _types_within(values, _STR_OR_NONE):
            return False
        track_columns[name] = values
    durations = _column(new_tracks, "duration_ms")
    if not _int64_column(durations):
        return False
    out.lengths = lengths
    out.entry_track = entries
    out.track_uri = encoded.dictionary
    for name, values in track_columns.items():
        setattr(out, name, pa.array(values, pa.string()))
    out.duration_ms = pa.array(durations, pa.int64())
    misplaced = misplaced_positions(_column(all_tracks, "pos"), lengths)
    if misplaced:
        out.warnings["pos_mismatch"] = misplaced
    return True


def _count_mismatches(out: ParsedPlaylists, declared: list, count_field: str) -> None:
    mismatches = sum(1 for d, n in zip(declared, out.lengths) if d is not None and d != n)
    if mismatches:
        out.warnings[f"{count_field}_mismatch"] = mismatches


# ---- columnar decoding straight from the bytes ---------------------------------------------------------
# Arrow's JSON reader parses a whole slice (one JSON object) into typed columns in C++: no Python object per
# playlist or track, and every later step is a vectorised Arrow/numpy operation. It is stricter than JSON
# in places (a field whose type changes, a duplicate key) and looser in two (NaN/Infinity literals, bytes
# that are not UTF-8), so parse_document_fast checks those itself and declines anything unusual; the
# orjson + dict path then takes the file, and alone words errors, so every path accepts the same input.

# collaborative, pos and num_holdouts are left to inference: their JSON type varies between valid files
_TRACK_TYPE = pa.struct([(name, pa.string()) for name in ("track_uri", *TRACK_STR_FIELDS)]
                        + [("duration_ms", pa.int64())])
_PLAYLIST_TYPE = pa.struct(
    [("pid", pa.int64())]
    + [(name, pa.string()) for name in PLAYLIST_STR_FIELDS]
    + [(name, pa.int64()) for name in (*PLAYLIST_INT_FIELDS, "num_tracks", "num_samples")]
    + [("tracks", pa.list_(_TRACK_TYPE))]
)
_DOCUMENT_SCHEMA = pa.schema([("playlists", pa.list_(_PLAYLIST_TYPE))])


def document_kind(has_info: bool, has_date: bool, first_has_holdouts: bool) -> str:
    """``challenge`` for a challenge set (no ``info``; a ``date`` or playlists with ``num_holdouts``)."""
    return "challenge" if not has_info and (has_date or first_has_holdouts) else "slice"


def _read_document(data: bytes) -> pa.Table | None:
    """The document as a one-row table, or None when Arrow's reading could differ from strict JSON's."""
    if not data.isascii() and not _is_utf8(data):  # Arrow's reader does not check
        return None
    options = pajson.ReadOptions(use_threads=False, block_size=len(data) + 1)
    parse = pajson.ParseOptions(explicit_schema=_DOCUMENT_SCHEMA, newlines_in_values=True,
                                unexpected_field_behavior="infer")
    try:
        table = pajson.read_json(pa.BufferReader(data), read_options=options, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # NaN and Infinity, which strict JSON rejects, can only have landed in a float column (a field we
    # do not know): declining any float column keeps them out
    if table.num_rows != 1 or any(_has_float(field.type) for field in table.schema):
        return None
    return table


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked by Arrow (as strict as Python's decoder, 40x faster)."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _has_float(kind: pa.DataType) -> bool:
    if pa.types.is_floating(kind):
        return True
    return any(_has_float(kind.field(i).type) for i in range(kind.num_fields))


def _flag_column(values: pa.Array | None, n: int) -> pa.Array | None:
    """collaborative as booleans ("true"/"false" strings or JSON booleans), None if any other value."""
    if values is None or pa.types.is_null(values.type):
        return pa.nulls(n, pa.bool_())
    if pa.types.is_boolean(values.type):
        return values
    if not pa.types.is_string(values.type):
        return None
    flags = pc.equal(values, "true")
    if (pc.sum(pc.or_(flags, pc.equal(values, "false"))).as_py() or 0) != n - values.null_count:
        return None
    return flags


def _misplaced_array(pos: pa.Array | None, offsets: np.ndarray) -> int | None:
    """:func:`misplaced_positions` for an Arrow ``pos`` column; None when it is not integers."""
    if pos is None or pa.types.is_null(pos.type) or not len(pos):
        return 0
    if not pa.types.is_integer(pos.type):
        return None
    lengths = np.diff(offsets)
    expected = np.arange(len(pos), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    wrong = pc.fill_null(pc.not_equal(pos, pa.array(expected)), False).to_numpy(zero_copy_only=False)
    row = np.repeat(np.arange(len(lengths)), lengths)
    return len(np.unique(row[wrong]))


def _field(struct: pa.StructArray, name: str) -> pa.Array | None:
    return struct.field(name) if struct.type.get_field_index(name) >= 0 else None


def parse_document_fast(data: bytes, source: str) -> tuple[str, ParsedPlaylists] | None:
    """Decode and columnise a whole slice or challenge-set file whose playlists are all valid.

    Returns ``(kind, parsed)``, or None when anything is unusual (invalid JSON, a wrong type, a missing
    required field, a duplicate pid, a top-level array): the caller then takes the orjson path, which
    reports or skips exactly what is wrong.
    """
    table = _read_document(data)
    if table is None:
        return None
    names = table.schema.names
    column = table.column("playlists").combine_chunks()
    if column.null_count:
        return None
    playlists = column.flatten()
    n = len(playlists)
    if playlists.null_count:
        return None
    holdouts = _field(playlists, "num_holdouts")
    has_info, has_date = "info" in names, "date" in names
    if not (has_info or has_date) and holdouts is not None and n and not holdouts.is_valid()[0].as_py():
        return None  # num_holdouts: null and absent read alike, and they give different kinds
    kind = document_kind(has_info, has_date, holdouts is not None and n > 0)
    pid = playlists.field("pid")
    if pid.null_count or (n and pc.min(pid).as_py() < 0) or len(pc.unique(pid)) != n:
        return None
    track_lists = playlists.field("tracks")
    if track_lists.null_count:
        return None
    tracks = track_lists.flatten()
    uris = tracks.field("track_uri")
    if tracks.null_count or uris.null_count or (len(uris) and pc.min(pc.binary_length(uris)).as_py() == 0):
        return None
    collaborative = _flag_column(_field(playlists, "collaborative"), n)
    offsets = np.asarray(track_lists.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    misplaced = _misplaced_array(_field(tracks, "pos"), offsets)
    if collaborative is None or misplaced is None:
        return None

    out = ParsedPlaylists(source=source, pid=pid, collaborative=collaborative)
    for name in (*PLAYLIST_STR_FIELDS, *PLAYLIST_INT_FIELDS):
        setattr(out, name, playlists.field(name))
    out.lengths = np.diff(offsets)
    # dictionary_encode numbers distinct URIs in order of first appearance, as the careful path does; a
    # URI's first occurrence is where its index exceeds every earlier one
    encoded = uris.dictionary_encode()
    entries = encoded.indices.to_numpy().astype(np.int32, copy=False)
    first = np.flatnonzero(entries > np.maximum.accumulate(np.concatenate([[-1], entries[:-1]])))
    out.entry_track = entries
    out.track_uri = encoded.dictionary
    first = pa.array(first)
    for name in (*TRACK_STR_FIELDS, "duration_ms"):
        setattr(out, name, tracks.field(name).take(first))
    if misplaced:
        out.warnings["pos_mismatch"] = misplaced
    count_field = "num_samples" if kind == "challenge" else "num_tracks"
    declared = playlists.field(count_field)
    mismatches = pc.sum(pc.not_equal(declared, pa.array(out.lengths))).as_py() or 0
    if mismatches:
        out.warnings[f"{count_field}_mismatch"] = mismatches
    return kind, out
