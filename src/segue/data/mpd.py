"""Read and validate playlists in the Million Playlist Dataset (MPD) JSON format.

Only ``pid`` and each track's ``track_uri`` are required; every other field is optional, because public
MPD subsets strip fields. Wrong types are errors that name the file, the playlist's position and pid, and
the field. The parser turns one slice into compact columns (:class:`ParsedPlaylists`) with tracks as
slice-local indices, so workers can parse in parallel and the main process only merges vocabularies.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from segue.errors import InputError

PLAYLIST_INT_FIELDS = ("modified_at", "num_followers", "num_edits")
PLAYLIST_STR_FIELDS = ("name", "description")
TRACK_STR_FIELDS = ("track_name", "artist_uri", "artist_name", "album_uri", "album_name")

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
    entry_track: list[int] = field(default_factory=list)
    # slice-local track table, one row per distinct track_uri, metadata from its first occurrence
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

    def entries(self) -> np.ndarray:
        return np.asarray(self.entry_track, dtype=np.int32)

    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=out[1:])
        return out


def _is_int(value) -> bool:
    return type(value) is int  # bool is a subclass of int and is not a valid count


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
    playlists, source: str, *, skip_invalid: bool = False, position_offset: int = 0
) -> ParsedPlaylists:
    """Validate and columnise a list of MPD playlist objects.

    ``source`` names the file in messages. With ``skip_invalid`` a bad playlist is recorded in
    ``skipped`` and left out; otherwise the first one raises :class:`InputError`.
    """
    out = ParsedPlaylists(source=source)
    if not isinstance(playlists, list):
        raise InputError(f"{source}: 'playlists' should be a JSON array, got {type(playlists).__name__}.")
    local: dict[str, int] = {}
    seen_pids: set[int] = set()
    warnings = out.warnings
    for position, playlist in enumerate(playlists, start=position_offset):
        pid = playlist.get("pid") if isinstance(playlist, dict) else None
        try:
            row = _parse_one(playlist, source, position, seen_pids, local, out)
        except InputError as exc:
            if not skip_invalid:
                raise
            out.skipped.append({"file": source, "position": position, "pid": pid, "reason": str(exc)})
            continue
        seen_pids.add(row[0])
        (pid, name, description, collaborative, modified_at, followers, edits, entries, declared) = row
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
            warnings["num_tracks_mismatch"] = warnings.get("num_tracks_mismatch", 0) + 1
    return out


def _parse_one(playlist, source, position, seen_pids, local, out: ParsedPlaylists):
    if not isinstance(playlist, dict):
        raise InputError(f"{source}: playlist at position {position} is not a JSON object.")
    pid = playlist.get("pid")
    if pid is None:
        raise InputError(f"{_where(source, position, None)}: required field 'pid' is missing.")
    if not _is_int(pid) or pid < 0:
        raise _bad(source, position, pid, "pid", pid, "a non-negative integer")
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
            raise _bad(source, position, pid, name, value, "an integer")
        ints[name] = value
    collaborative = _collaborative(playlist.get("collaborative"), source, position, pid)
    declared = playlist.get("num_tracks")
    if declared is not None and not _is_int(declared):
        raise _bad(source, position, pid, "num_tracks", declared, "an integer")
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
        raise _bad(source, position, pid, f"tracks[{i}].duration_ms", duration, "an integer")
    meta["duration_ms"] = duration
    return meta
