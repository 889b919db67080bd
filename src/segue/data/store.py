"""The segue store: a directory of Parquet files plus a manifest, and its CSR view.

Layout (``FORMAT_VERSION`` 1)::

    STORE/tracks.parquet     track_id, track_uri, track_name, artist_id, artist_uri, artist_name,
                             album_id, album_uri, album_name, duration_ms, count
    STORE/playlists.parquet  pid, name, description, collaborative, modified_at, num_followers,
                             num_edits, tracks (list<int32>, playlist order, repeats kept)
    STORE/manifest.json      format, version, sources, counts, skipped, warnings, fingerprint

Inside the library a track, artist or album is a dense int32 id (its row in ``tracks.parquet``,
artists and albums numbered in order of first appearance); URIs live only at the edges. Artists or
albums without any identifying field get id -1.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segue import __version__
from segue.data.mpd import ParsedPlaylists, parse_playlists, skip_reason
from segue.errors import InputError, NotFoundError, StoreError
from segue.io import STORE_OUTPUT, atomic_dir, read_json, write_json

FORMAT = STORE_OUTPUT.value  # manifest.json's "format": the marker `segue ingest --out` replaces
FORMAT_VERSION = 1
TRACKS_FILE = "tracks.parquet"
PLAYLISTS_FILE = "playlists.parquet"
MANIFEST_FILE = "manifest.json"
_COUNTS = ("playlists", "entries", "tracks", "artists", "albums")

TRACKS_SCHEMA = pa.schema(
    [
        ("track_id", pa.int32()),
        ("track_uri", pa.string()),
        ("track_name", pa.string()),
        ("artist_id", pa.int32()),
        ("artist_uri", pa.string()),
        ("artist_name", pa.string()),
        ("album_id", pa.int32()),
        ("album_uri", pa.string()),
        ("album_name", pa.string()),
        ("duration_ms", pa.int64()),
        ("count", pa.int64()),
    ]
)
PLAYLISTS_SCHEMA = pa.schema(
    [
        ("pid", pa.int64()),
        ("name", pa.string()),
        ("description", pa.string()),
        ("collaborative", pa.bool_()),
        ("modified_at", pa.int64()),
        ("num_followers", pa.int64()),
        ("num_edits", pa.int64()),
        ("tracks", pa.list_(pa.int32())),
    ]
)
_TRACK_INPUT_SCHEMA = pa.schema([f for f in TRACKS_SCHEMA if f.name not in ("artist_id", "album_id", "count")])
PLAYLIST_META_COLUMNS = ("name", "description", "collaborative", "modified_at", "num_followers", "num_edits")
TRACK_META_COLUMNS = ("track_name", "artist_uri", "artist_name", "album_uri", "album_name", "duration_ms")


def vocabulary_fingerprint(track_uris: pa.Array | Sequence[str]) -> str:
    """sha256 of the track URIs in id order: equal fingerprints mean equal track ids."""
    digest = hashlib.sha256()
    arr = pa.array(track_uris, type=pa.string()) if not isinstance(track_uris, pa.Array) else track_uris
    arr = arr.cast(pa.large_string()) if arr.type == pa.string() else arr
    # Hash the Arrow buffers (offsets + bytes) in chunks: no Python loop over millions of URIs.
    step = 1 << 20
    for start in range(0, len(arr), step):
        chunk = pa.concat_arrays([arr.slice(start, step)])  # materialise a zero-offset copy
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=len(chunk) + 1)
        data = chunk.buffers()[2]
        lengths = np.diff(offsets).astype(np.int64)
        digest.update(lengths.tobytes())
        if data is not None:
            digest.update(memoryview(data)[offsets[0] : offsets[-1]])
    return "sha256:" + digest.hexdigest()


class _Vocabulary:
    """Track URI -> dense id, numbering new URIs in order of first appearance, vectorised per slice.

    An open-addressing table (linear probing, numpy) maps each URI's 64-bit hash to its id; every hit is
    confirmed by comparing the strings, and a URI whose hash another URI already holds is kept in a
    small dict instead, so ids are exact whatever the hashes. (A Python dict of all URIs took about
    3x as long per slice in a profile of 12 slices: one Python string per URI, one cache miss after another.)
    """

    def __init__(self) -> None:
        self._n = 0
        self._slot_hash = np.zeros(1 << 10, dtype=np.uint64)  # the table; every array here grows by doubling
        self._slot_id = np.full(1 << 10, -1, dtype=np.int32)
        self._hashes = np.zeros(1 << 10, dtype=np.uint64)  # by id, to rebuild the table when it grows
        self._uri_offsets = np.zeros((1 << 10) + 1, dtype=np.int64)  # the URIs by id, as Arrow buffers
        self._uri_bytes = np.zeros(1 << 16, dtype=np.uint8)
        self._collided: dict[str, int] = {}

    def __len__(self) -> int:
        return self._n

    def ids(self, uris: pa.Array) -> np.ndarray:
        """int32 ids of ``uris`` (distinct non-null strings, e.g. one slice's track table), numbering unseen ones."""
        hashes = string_hashes(uris)
        ids = self._find(hashes)
        taken = np.zeros(len(ids), dtype=bool)  # new URIs whose hash another URI holds in the table
        hit = np.flatnonzero(ids >= 0)
        if len(hit):  # confirm each hit by its string: equal hashes are not proof
            same = pc.equal(self._uri_array().take(pa.array(ids[hit])), uris.take(pa.array(hit)))
            for i in hit[~same.to_numpy(zero_copy_only=False)].tolist():  # about once in 10^7 full-MPD ingests
                ids[i] = self._collided.get(uris[i].as_py(), -1)
                taken[i] = ids[i] < 0
        new = np.flatnonzero(ids < 0)
        if not len(new):
            return ids
        ids[new] = np.arange(self._n, self._n + len(new), dtype=np.int32)
        new_uris, new_hashes, new_ids = uris.take(pa.array(new)), hashes[new], ids[new]
        self._append(new_uris, new_hashes)
        table = np.zeros(len(new), dtype=bool)
        table[np.unique(new_hashes, return_index=True)[1]] = True  # of new URIs sharing a hash, the first
        table &= ~taken[new]
        for i in np.flatnonzero(~table).tolist():
            self._collided[new_uris[i].as_py()] = int(new_ids[i])
        if 10 * self._n > 7 * len(self._slot_id):  # at most 70% full: short probe runs
            self._slot_hash = np.zeros(1 << (2 * self._n).bit_length(), dtype=np.uint64)
            self._slot_id = np.full(len(self._slot_hash), -1, dtype=np.int32)
            first = np.unique(self._hashes[: self._n], return_index=True)[1]  # the lowest id of each hash
            self._insert(self._hashes[first], first.astype(np.int32))
        else:
            self._insert(new_hashes[table], new_ids[table])
        return ids

    def _find(self, hashes: np.ndarray) -> np.ndarray:
        """The id in the table under each hash (-1 where none): probe slots until a match or an empty one."""
        mask = len(self._slot_id) - 1
        ids = np.full(len(hashes), -1, dtype=np.int32)
        pending = np.arange(len(hashes))
        slot = (hashes & np.uint64(mask)).astype(np.int64)
        while len(pending):
            found = self._slot_id[slot]
            match = (found >= 0) & (self._slot_hash[slot] == hashes[pending])
            ids[pending[match]] = found[match]
            more = (found >= 0) & ~match
            pending, slot = pending[more], (slot[more] + 1) & mask
        return ids

    def _insert(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        """Put (hash, id) pairs, their hashes distinct and not in the table yet, into empty slots."""
        mask = len(self._slot_id) - 1
        slot = (hashes & np.uint64(mask)).astype(np.int64)
        while len(hashes):
            # pairs aiming at one empty slot each write a mark there; the pair whose mark stays takes it,
            # the others (and those facing a full slot) probe on
            trying = np.flatnonzero(self._slot_id[slot] < 0)
            self._slot_id[slot[trying]] = -2 - trying
            won = trying[self._slot_id[slot[trying]] == -2 - trying]
            self._slot_id[slot[won]] = ids[won]
            self._slot_hash[slot[won]] = hashes[won]
            rest = np.ones(len(hashes), dtype=bool)
            rest[won] = False
            hashes, ids, slot = hashes[rest], ids[rest], (slot[rest] + 1) & mask

    def _append(self, uris: pa.Array, hashes: np.ndarray) -> None:
        """Store new URIs (and their hashes, to rebuild the table when it grows) after the known ones."""
        uris = pa.concat_arrays([uris.cast(pa.large_string())])  # zero-offset buffers
        offsets = np.frombuffer(uris.buffers()[1], dtype=np.int64, count=len(uris) + 1)
        data = uris.buffers()[2]
        added = (np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]] if data is not None
                 else np.zeros(0, dtype=np.uint8))
        start, end = self._n, self._n + len(uris)
        size = int(self._uri_offsets[start])
        self._uri_bytes = _grown(self._uri_bytes, size + len(added))
        self._uri_bytes[size : size + len(added)] = added
        self._uri_offsets = _grown(self._uri_offsets, end + 1)
        self._uri_offsets[start + 1 : end + 1] = offsets[1:] - offsets[0] + size
        self._hashes = _grown(self._hashes, end)
        self._hashes[start:end] = hashes
        self._n = end

    def _uri_array(self) -> pa.LargeStringArray:
        """The URIs in id order, a view of the growing buffers (no copy)."""
        end = int(self._uri_offsets[self._n])
        return pa.Array.from_buffers(pa.large_string(), self._n, [
            None, pa.py_buffer(self._uri_offsets[: self._n + 1]), pa.py_buffer(self._uri_bytes[:end])])


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array``, or a copy at least twice as long when it is shorter than ``size`` (amortised growth)."""
    if len(array) >= size:
        return array
    out = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
    out[: len(array)] = array
    return out


def _as_array(values, kind: pa.DataType) -> pa.Array:
    """A parsed column (an Arrow array from the columnar path, a list from the dict paths) as Arrow."""
    return values if isinstance(values, pa.Array) else pa.array(values, kind)


def _entity_keys(uris, names, scope=None) -> pa.Array:
    """Key an artist/album by URI, else by name (stripped subsets; an album's name scoped by its artist's
    key), else null (unknown). Vectorised over the whole track table."""
    nonempty = lambda column: pc.fill_null(pc.greater(pc.binary_length(column), 0), False)  # noqa: E731
    by_name = pc.binary_join_element_wise("name:", names, "")
    if scope is not None:
        by_name = pc.if_else(pc.is_valid(scope), pc.binary_join_element_wise(by_name, scope, "\x00"), by_name)
    unknown = pa.nulls(len(uris), pa.string())
    return pc.if_else(nonempty(uris), uris, pc.if_else(nonempty(names), by_name, unknown))


def _first_appearance_ids(keys: pa.Array) -> tuple[np.ndarray, int]:
    """int32 ids numbering distinct keys in order of first appearance (null -> -1), and how many."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    encoded = pc.dictionary_encode(keys)
    ids = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    return ids, len(encoded.dictionary)


def csr_keep(indptr: np.ndarray, values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR (``indptr``, ``values``) with only the entries where ``keep`` is True: (int64 indptr, values)."""
    n = len(indptr) - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))[keep]
    out = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=out[1:])
    return out, values[keep]


def csr_slice(indptr: np.ndarray, values: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start:stop`` of the CSR (``indptr``, ``values``) as a CSR of their own (indptr rebased to 0)."""
    return indptr[start : stop + 1] - indptr[start], values[indptr[start] : indptr[stop]]


def map_track_ids(ids: np.ndarray, mapping: np.ndarray | None) -> np.ndarray:
    """Track ids through a :meth:`Store.ids_in` mapping (None: unchanged); -1 (padding) stays -1."""
    if mapping is None:
        return ids
    out = np.full(ids.shape, -1, dtype=np.int32)
    known = ids >= 0
    out[known] = mapping[ids[known]]
    return out


def file_records(directory: Path) -> dict:
    """Size and sha256 of a store's own Parquet files, for the manifest (checked when a store is opened)."""
    return {name: {"size": (directory / name).stat().st_size, "sha256": _sha256(directory / name)}
            for name in (TRACKS_FILE, PLAYLISTS_FILE)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def store_manifest(counts: dict, tracks: pa.Table, directory: Path, *, skipped: list | None = None,
                   warnings: dict | None = None) -> dict:
    """The manifest fields every store has, once its Parquet files are written into ``directory``;
    callers add their own (sources, split info, ...)."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "segue_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "counts": counts,
        "fingerprint": vocabulary_fingerprint(tracks.column("track_uri").combine_chunks()),
        "skipped": skipped or [],
        "warnings": warnings or {},
        "files": file_records(Path(directory)),
    }


class StoreBuilder:
    """Merges parsed slices into global ids and streams playlists into Parquet.

    Memory grows with the vocabulary (distinct tracks), not with the number of playlists or files:
    playlists are written one row group per added batch.
    """

    def __init__(self, directory: Path, *, skip_invalid: bool = False) -> None:
        self.directory = Path(directory)
        self.skip_invalid = skip_invalid
        self.tracks = _Vocabulary()
        self.n_artists = 0
        self.n_albums = 0
        self._track_chunks: list[pa.RecordBatch] = []
        self._counts = np.zeros(0, dtype=np.int64)
        self._pid_source: dict[int, str] = {}
        self.skipped: list[dict] = []
        self.warnings: dict[str, int] = {}
        self.n_playlists = 0
        self.n_entries = 0
        self._writer = pq.ParquetWriter(self.directory / PLAYLISTS_FILE, PLAYLISTS_SCHEMA, compression="zstd")

    def add(self, parsed: ParsedPlaylists) -> None:
        self.skipped.extend(parsed.skipped)
        for key, value in parsed.warnings.items():
            self.warnings[key] = self.warnings.get(key, 0) + value
        keep = self._drop_duplicate_pids(parsed)
        local = parsed.entries()
        offsets = parsed.offsets()
        rows = None  # slice-local track rows still used, when playlists were dropped
        if keep is not None:
            lengths = np.diff(offsets)
            local = local[np.repeat(keep, lengths)]
            offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
            np.cumsum(lengths[keep], out=offsets[1:])
            # only the tracks of the kept playlists, in their order of first appearance (no count-0 tracks)
            used, first = np.unique(local, return_index=True)
            rows = used[np.argsort(first, kind="stable")]
            renumber = np.zeros(len(parsed.track_uri), dtype=np.int32)
            renumber[rows] = np.arange(len(rows), dtype=np.int32)
            local = renumber[local]
        uris = _as_array(parsed.track_uri, pa.string())
        if rows is not None:
            uris = uris.take(pa.array(rows))
        n_before = len(self.tracks)
        global_ids = self.tracks.ids(uris)
        new = np.flatnonzero(global_ids >= n_before)
        if len(new):
            self._add_track_metadata(parsed, new if rows is None else rows[new])
        entries = global_ids[local] if len(local) else np.zeros(0, np.int32)
        if len(self._counts) < len(self.tracks):
            # grow geometrically: a bincount over all tracks per slice would cost O(tracks) each time
            grown = np.zeros(max(len(self.tracks), 2 * len(self._counts)), np.int64)
            grown[: len(self._counts)] = self._counts
            self._counts = grown
        np.add.at(self._counts, entries, 1)
        columns = [_as_array(getattr(parsed, f.name), f.type) for f in PLAYLISTS_SCHEMA if f.name != "tracks"]
        if keep is not None:
            columns = [column.filter(pa.array(keep)) for column in columns]
        tracks = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(entries, pa.int32()))
        table = pa.Table.from_arrays(columns + [tracks], schema=PLAYLISTS_SCHEMA)
        if table.num_rows:
            self._writer.write_table(table)
        self.n_playlists += table.num_rows
        self.n_entries += len(entries)

    def _drop_duplicate_pids(self, parsed: ParsedPlaylists) -> np.ndarray | None:
        pids = parsed.column("pid")
        fresh = dict.fromkeys(pids, parsed.source)
        if len(fresh) == len(pids) and self._pid_source.keys().isdisjoint(fresh):  # the usual case, at C speed
            self._pid_source.update(fresh)
            return None
        keep = None
        for i, pid in enumerate(pids):
            first = self._pid_source.get(pid)
            if first is None:
                self._pid_source[pid] = parsed.source
                continue
            message = (
                f"{parsed.source}: duplicate pid {pid}, already read from {first}. "
                "pids must be unique across the input; remove one copy or pass --skip-invalid."
            )
            if not self.skip_invalid:
                raise InputError(message)
            if keep is None:
                keep = np.ones(parsed.n_playlists, dtype=bool)
            keep[i] = False
            self.skipped.append({"file": parsed.source, "position": None, "pid": pid, "reason": skip_reason(message)})
        return keep

    def _add_track_metadata(self, parsed: ParsedPlaylists, new: np.ndarray) -> None:
        # e.g. the first slice: every row in order, no need to copy columns
        everything = len(new) == len(parsed.track_uri) and bool(np.all(np.diff(new) == 1))
        cols = {}
        for name in ("track_uri", *TRACK_META_COLUMNS):
            kind = TRACKS_SCHEMA.field(name).type
            values = _as_array(getattr(parsed, name), kind)
            cols[name] = values if everything else values.take(pa.array(new))
        first_id = len(self.tracks) - len(new)
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(np.arange(first_id, first_id + len(new), dtype=np.int32)),
                cols["track_uri"],
                cols["track_name"],
                cols["artist_uri"],
                cols["artist_name"],
                cols["album_uri"],
                cols["album_name"],
                cols["duration_ms"],
            ],
            schema=_TRACK_INPUT_SCHEMA,
        )
        self._track_chunks.append(batch)

    def finish(self, manifest_extra: dict | None = None) -> dict:
        """Close the playlists file, write tracks.parquet and manifest.json; return the manifest."""
        self._writer.close()
        tracks = pa.Table.from_batches(self._track_chunks, schema=_TRACK_INPUT_SCHEMA).combine_chunks()
        self._track_chunks = []
        # artists and albums are numbered here, vectorised over all tracks (in id order), rather than per slice
        # in the merge's hot path: same ids (order of first appearance), no Python dict of artist/album keys
        artist_keys = _entity_keys(tracks.column("artist_uri"), tracks.column("artist_name"))
        album_keys = _entity_keys(tracks.column("album_uri"), tracks.column("album_name"), scope=artist_keys)
        artist_ids, self.n_artists = _first_appearance_ids(artist_keys)
        album_ids, self.n_albums = _first_appearance_ids(album_keys)
        del artist_keys, album_keys
        tracks = tracks.add_column(tracks.schema.get_field_index("artist_uri"), "artist_id", pa.array(artist_ids))
        tracks = tracks.add_column(tracks.schema.get_field_index("album_uri"), "album_id", pa.array(album_ids))
        tracks = tracks.append_column("count", pa.array(self._counts[: tracks.num_rows], pa.int64()))
        tracks = tracks.cast(TRACKS_SCHEMA)
        pq.write_table(tracks, self.directory / TRACKS_FILE, compression="zstd")
        counts = {"playlists": self.n_playlists, "entries": self.n_entries, "tracks": len(self.tracks),
                  "artists": self.n_artists, "albums": self.n_albums}
        manifest = store_manifest(counts, tracks, self.directory, skipped=self.skipped, warnings=self.warnings)
        manifest.update(manifest_extra or {})
        write_json(self.directory / MANIFEST_FILE, manifest)
        return manifest

    def abort(self) -> None:
        self._writer.close()


def build_store(playlists: Iterable[dict], out: str | os.PathLike, *, source: str = "<memory>",
                skip_invalid: bool = False, manifest_extra: dict | None = None) -> "Store":
    """Write a store from MPD-style playlist dicts (in memory), atomically. Handy for tests and tools."""
    playlists = list(playlists)
    with atomic_dir(out) as tmp:
        builder = StoreBuilder(tmp, skip_invalid=skip_invalid)
        try:
            builder.add(parse_playlists(playlists, source, skip_invalid=skip_invalid))
            builder.finish({"sources": [{"path": source}], **(manifest_extra or {})})
        except BaseException:
            builder.abort()
            raise
    return Store.open(out)


class Store:
    """Read-only view of a store: playlists as CSR arrays, tracks as id-indexed arrays, vocab both ways.

    Opening checks every file the store needs (the manifest, and the size and Parquet footer of its
    files against what the manifest records), so a damaged store fails here with a message, not later
    inside a model; :meth:`verify` also compares checksums.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).absolute()
        manifest_path = self.path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise StoreError(
                f"{self.path} is not a segue store (no {MANIFEST_FILE}). Create one with `segue ingest`."
            )
        try:
            self.manifest = read_json(manifest_path)
        except ValueError as exc:  # JSON errors and invalid UTF-8
            raise self.damaged(MANIFEST_FILE, f"not valid JSON: {exc}") from None
        if not isinstance(self.manifest, dict):
            raise self.damaged(MANIFEST_FILE, "not a JSON object")
        if self.manifest.get("format") != FORMAT or self.manifest.get("version") != FORMAT_VERSION:
            raise StoreError(
                f"{manifest_path}: unknown store format {self.manifest.get('format')!r} version "
                f"{self.manifest.get('version')!r}; this segue reads {FORMAT} version {FORMAT_VERSION}. "
                "Re-ingest the source data."
            )
        counts = self.manifest.get("counts")
        if not isinstance(counts, dict) or not all(type(counts.get(k)) is int and counts[k] >= 0 for k in _COUNTS):
            raise self.damaged(MANIFEST_FILE, f"'counts' should hold {', '.join(_COUNTS)} as integers")
        if not isinstance(self.manifest.get("fingerprint"), str):
            raise self.damaged(MANIFEST_FILE, "'fingerprint' is missing")
        self._check_file(TRACKS_FILE, counts["tracks"])
        self._check_file(PLAYLISTS_FILE, counts["playlists"])

    def damaged(self, name: str, reason: str) -> StoreError:
        return StoreError(f"store {self.path} is damaged ({name}: {reason}); re-ingest it with `segue ingest` "
                          "(or `segue split` for a split's train store).")

    def _check_file(self, name: str, rows: int) -> None:
        """Size against the manifest (stores that record it), then the Parquet footer and its row count."""
        path = self.path / name
        if not path.is_file():
            raise self.damaged(name, "the file is missing")
        recorded = (self.manifest.get("files") or {}).get(name) or {}
        size = path.stat().st_size
        if "size" in recorded and size != recorded["size"]:
            raise self.damaged(name, f"{size:,} bytes where the manifest records {recorded['size']:,}; "
                                     "the file is truncated or was changed")
        try:
            found = pq.read_metadata(path).num_rows
        except (pa.ArrowException, OSError) as exc:
            raise self.damaged(name, f"not a readable Parquet file ({exc})") from None
        if found != rows:
            raise self.damaged(name, f"{found:,} rows where the manifest records {rows:,}")

    def verify(self) -> None:
        """Compare each file's sha256 with the manifest (reads every byte); a StoreError when one differs."""
        for name, recorded in (self.manifest.get("files") or {}).items():
            if _sha256(self.path / name) != recorded.get("sha256"):
                raise self.damaged(name, "its checksum differs from the manifest's; the file was changed")

    def _read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        try:
            return pq.read_table(self.path / name, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise self.damaged(name, f"cannot be read ({exc})") from None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Store":
        return cls(path)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, playlists={self.n_playlists}, tracks={self.n_tracks})"

    # ---- playlists -------------------------------------------------------------------------
    @cached_property
    def _playlist_tracks(self) -> pa.ListArray:
        column = self._read(PLAYLISTS_FILE, ["tracks"]).column("tracks")
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)

    @cached_property
    def indptr(self) -> np.ndarray:
        """(n_playlists + 1,) int64 row offsets into :attr:`indices`."""
        tracks = self._playlist_tracks
        offsets = np.asarray(tracks.offsets, dtype=np.int64)
        return offsets - offsets[0]

    @cached_property
    def indices(self) -> np.ndarray:
        """(n_entries,) int32 track ids of all playlists, concatenated in playlist order."""
        tracks = self._playlist_tracks
        start, end = int(np.asarray(tracks.offsets[0:1])[0]), int(np.asarray(tracks.offsets[-1:])[0])
        values = tracks.values.slice(start, end - start)
        return values.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)

    @cached_property
    def pids(self) -> np.ndarray:
        return self._read(PLAYLISTS_FILE, ["pid"]).column("pid").to_numpy()

    @cached_property
    def playlist_meta(self) -> pa.Table:
        """Playlist metadata columns (everything but the tracks), one row per playlist."""
        return self._read(PLAYLISTS_FILE, ["pid", *PLAYLIST_META_COLUMNS])

    @cached_property
    def names(self) -> list[str | None]:
        return self.playlist_meta.column("name").to_pylist()

    @property
    def n_playlists(self) -> int:
        return int(self.manifest["counts"]["playlists"])

    @property
    def n_entries(self) -> int:
        return int(self.manifest["counts"]["entries"])

    @cached_property
    def _row_of_pid(self) -> dict[int, int]:
        return {int(pid): row for row, pid in enumerate(self.pids.tolist())}

    def row_of_pid(self, pid: int) -> int:
        row = self._row_of_pid.get(int(pid))
        if row is None:
            raise NotFoundError(f"pid {pid} is not in the store {self.path}.")
        return row

    def playlist_tracks(self, row: int) -> np.ndarray:
        """Track ids of the playlist at ``row`` (not pid), in order."""
        return self.indices[self.indptr[row] : self.indptr[row + 1]]

    def playlist_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def csr(self, binary: bool = True, dtype=np.float32):
        """Playlists x tracks ``scipy.sparse.csr_matrix``; repeats summed unless ``binary``."""
        import scipy.sparse as sp

        matrix = sp.csr_matrix(
            # copies: scipy sorts indices in place and the Arrow-backed arrays are read-only
            (np.ones(len(self.indices), dtype=dtype), self.indices.copy(), self.indptr.copy()),
            shape=(self.n_playlists, self.n_tracks),
        )
        matrix.sum_duplicates()
        if binary:
            matrix.data[:] = 1
        return matrix

    # ---- tracks ----------------------------------------------------------------------------
    @cached_property
    def tracks(self) -> pa.Table:
        # one chunk per column: take() on a chunked table concatenates the chunks again on every call
        return self._read(TRACKS_FILE).combine_chunks()

    @property
    def n_tracks(self) -> int:
        return int(self.manifest["counts"]["tracks"])

    @property
    def n_artists(self) -> int:
        return int(self.manifest["counts"]["artists"])

    @property
    def n_albums(self) -> int:
        return int(self.manifest["counts"]["albums"])

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    def _track_column(self, name: str) -> np.ndarray:
        return self.tracks.column(name).to_numpy()

    @cached_property
    def track_artist(self) -> np.ndarray:
        """(n_tracks,) int32 artist id per track, -1 when unknown."""
        return self._track_column("artist_id").astype(np.int32, copy=False)

    @cached_property
    def track_album(self) -> np.ndarray:
        """(n_tracks,) int32 album id per track, -1 when unknown."""
        return self._track_column("album_id").astype(np.int32, copy=False)

    @cached_property
    def track_count(self) -> np.ndarray:
        """(n_tracks,) int64 occurrences of each track in the store's playlists (repeats counted)."""
        return self._track_column("count").astype(np.int64, copy=False)

    @cached_property
    def track_uris(self) -> list[str]:
        return self.track_uri_array.to_pylist()

    @cached_property
    def track_uri_array(self) -> pa.Array:
        """Track URIs in id order, as one Arrow array (no Python strings)."""
        return self.tracks.column("track_uri").combine_chunks()

    @property
    def _track_index(self) -> "TrackIndex":
        return track_index(self.fingerprint, lambda: self.track_uri_array)

    def track_id(self, uri: str) -> int:
        tid = int(self.track_ids([uri])[0])
        if tid < 0:
            raise NotFoundError(f"track {uri!r} is not in the store {self.path}.")
        return tid

    def track_ids(self, uris: Iterable[str | None] | pa.Array, missing: int = -1) -> np.ndarray:
        """int32 ids for ``uris`` (strings or an Arrow string array), vectorised; unknown URIs (and None)
        map to ``missing``."""
        return self._track_index.ids(uris, missing)

    def ids_in(self, other: "Store") -> np.ndarray | None:
        """(n_tracks,) int32 ids of this store's tracks in ``other`` (-1 where unknown), matched by URI;
        None when both have the same vocabulary (the ids already agree). Apply with :func:`map_track_ids`."""
        if self.fingerprint == other.fingerprint:
            return None
        return other.track_ids(self.track_uri_array)  # Arrow to Arrow: no Python string per track

    def track_info(self, ids: Sequence[int] | np.ndarray) -> list[dict]:
        """Display metadata (uri, name, artist, album, ids) for track ids; -1 gives None."""
        ids = np.asarray(ids, dtype=np.int64)
        valid = ids[ids >= 0]
        rows = self.tracks.take(pa.array(valid)).to_pylist() if len(valid) else []
        it = iter(rows)
        return [next(it) if i >= 0 else None for i in ids.tolist()]


# ---- URI -> id lookup ------------------------------------------------------------------------------------
# A Python dict of every URI costs ~0.4 GB at the full MPD and was built by every Store; sorted 64-bit
# hashes cost 12 bytes a track, are built once per vocabulary in a process, and look up many URIs at once.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_INDEX_CACHE: dict[str, "TrackIndex"] = {}
_INDEX_CACHE_SIZE = 4


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the output (uint64 arithmetic wraps)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def string_hashes(values: pa.Array, block: int = 1 << 16) -> np.ndarray:
    """(n,) uint64 hash of each string (nulls hash like ""), vectorised over the Arrow buffers.

    Each string is read as little 8-byte words (zero-padded); every word is mixed with its position and
    a string's hash mixes the sum of its words' with its length. Values depend on neither ``block`` nor
    the array's layout; they are never stored, only used within one process.
    """
    values = values.cast(pa.large_string())
    out = np.empty(len(values), dtype=np.uint64)
    for start in range(0, len(values), block):
        chunk = pa.concat_arrays([values.slice(start, block)])  # zero-offset copy of its buffers
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=len(chunk) + 1)
        data = chunk.buffers()[2]
        raw = (np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]] if data is not None
               else np.zeros(0, np.uint8))
        offsets = offsets - offsets[0]
        lengths = np.diff(offsets)
        words = (lengths + 7) // 8
        word_end = np.cumsum(words)
        word_start = word_end - words
        padded = np.zeros(8 * int(word_end[-1]) if len(chunk) else 0, dtype=np.uint8)
        if len(chunk) and lengths.min() == lengths.max():  # e.g. Spotify URIs: one 2-D copy, no index arrays
            width = int(lengths[0])
            padded.reshape(len(chunk), -1)[:, :width] = raw.reshape(len(chunk), width)
        else:
            within = np.arange(len(raw), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
            padded[np.repeat(8 * word_start, lengths) + within] = raw
        position = np.arange(int(word_end[-1]) if len(chunk) else 0, dtype=np.uint64)
        position -= np.repeat(word_start.astype(np.uint64), words)
        terms = _mix(padded.view("<u8") ^ (position * _GOLDEN))
        sums = np.zeros(len(chunk), dtype=np.uint64)
        filled = words > 0
        if len(terms):
            sums[filled] = np.add.reduceat(terms, word_start[filled])
        out[start : start + len(chunk)] = _mix(sums ^ lengths.astype(np.uint64))
    return out


class TrackIndex:
    """URI -> id for one vocabulary: hashes sorted once, a vectorised binary search, then a string compare."""

    def __init__(self, uris: pa.Array) -> None:
        self.uris = uris
        hashes = string_hashes(uris)
        self.order = np.argsort(hashes, kind="stable").astype(np.int32)
        self.sorted_hashes = hashes[self.order]

    def ids(self, uris: Iterable[str | None] | pa.Array, missing: int = -1) -> np.ndarray:
        if isinstance(uris, pa.ChunkedArray):
            uris = uris.combine_chunks()
        if not isinstance(uris, pa.Array):
            uris = pa.array(uris if isinstance(uris, (list, tuple)) else list(uris), pa.string())
        out = np.full(len(uris), missing, dtype=np.int32)
        if not len(uris) or not len(self.order):
            return out
        wanted = string_hashes(uris)
        slot = np.minimum(np.searchsorted(self.sorted_hashes, wanted), len(self.order) - 1)
        hit = self.sorted_hashes[slot] == wanted
        candidate = self.order[slot]
        same = pc.fill_null(pc.equal(self.uris.take(pa.array(candidate)), uris.cast(self.uris.type)), False)
        found = hit & same.to_numpy(zero_copy_only=False)
        out[found] = candidate[found]
        # two vocabulary URIs with one hash (about 1 in 10^7 stores at the full MPD): look along the run
        for i in np.flatnonzero(hit & ~found & pc.is_valid(uris).to_numpy(zero_copy_only=False)).tolist():
            uri, s = uris[i].as_py(), int(slot[i]) + 1
            while s < len(self.order) and self.sorted_hashes[s] == wanted[i]:
                if self.uris[int(self.order[s])].as_py() == uri:
                    out[i] = self.order[s]
                    break
                s += 1
        return out


def track_index(fingerprint: str, uris) -> TrackIndex:
    """The process-wide index of the vocabulary with ``fingerprint`` (built from ``uris()`` the first time):
    equal fingerprints mean equal URIs in id order, so every Store of one vocabulary shares it."""
    index = _INDEX_CACHE.get(fingerprint)
    if index is None:
        index = TrackIndex(uris())
        while len(_INDEX_CACHE) >= _INDEX_CACHE_SIZE:
            _INDEX_CACHE.pop(next(iter(_INDEX_CACHE)))
        _INDEX_CACHE[fingerprint] = index
    return index
