"""Ingest MPD-format JSON (slices, folders of slices, the official zip, challenge sets) into a store.

Files are parsed and validated in a pool of worker processes, each returning one slice as compact
columns (:class:`~segue.data.mpd.ParsedPlaylists`: Arrow arrays, the tracks numbered within the slice);
the main process merges them in input order with :class:`~segue.data.store.StoreBuilder`, which maps
the slice's distinct URIs to global ids (a vectorised hash table), streams playlists to Parquet, and
numbers artists and albums at the end. At most a few slices are in flight at once, so memory grows with the vocabulary,
not with the number of files. The store is built in a temporary directory beside the target and
renamed at the end: on any error an existing store is left as it was.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import signal
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa

from segue.data.mpd import ParsedPlaylists, document_kind, parse_document_fast, parse_playlists, skip_reason
from segue.data.store import Store, StoreBuilder
from segue.errors import InputError, SegueError
from segue.io import STORE_OUTPUT, atomic_dir, claim_output, decode_json, plural, strip_bom
from segue.progress import progress_task

log = logging.getLogger(__name__)

SLICE_PATTERN = re.compile(r"mpd\.slice\.\d+-\d+\.json$")
_DIGITS = re.compile(r"(\d+)")
_SKIP_HINT = "Fix or remove the file, or pass --skip-invalid to skip unreadable files."


@dataclass(frozen=True)
class SourceFile:
    """One JSON document to read: a file on disk, or a member of a zip archive."""

    path: Path
    member: str | None = None

    @property
    def name(self) -> str:
        """How messages and the manifest name it."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)


@dataclass
class _Result:
    source: SourceFile
    info: dict
    parsed: ParsedPlaylists | None = None
    error: str | None = None


def natural_key(name: str) -> tuple:
    """Sort key that orders numbers by value: ``mpd.slice.1000-1999.json`` after ``mpd.slice.0-999.json``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(name) if part)


def resolve_sources(sources: Sequence[str | os.PathLike]) -> list[SourceFile]:
    """Expand folders and zips into the JSON documents to read, in a deterministic order.

    Arguments keep the order given; inside a folder or zip, files are ordered by the numbers in their
    names (the official slices by start index). A folder contributes its ``*.json`` files, or those in
    its ``data/`` folder (the unpacked official layout); a zip its ``mpd.slice.*.json`` members.
    """
    if not sources:
        raise InputError("no input given: pass MPD slice files, a folder of slices, the MPD zip or a challenge set.")
    out: list[SourceFile] = []
    for raw in sources:
        path = Path(raw)
        if path.is_dir():
            out.extend(_folder_files(path))
        elif path.is_file():
            out.extend(_zip_members(path) if _is_zip(path) else [SourceFile(path)])
        elif path.exists():
            raise InputError(f"{path}: not a regular file or folder; pass MPD JSON files, folders or the MPD zip.")
        else:
            raise InputError(f"{path}: no such file or folder.")
    seen: set[tuple] = set()
    unique = []
    for source in out:
        key = (source.path.resolve(), source.member)
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique


def _folder_files(folder: Path) -> list[SourceFile]:
    for candidate in (folder, folder / "data"):
        if not candidate.is_dir():
            continue
        files = [p for p in candidate.iterdir() if p.suffix == ".json" and p.is_file() and not p.name.startswith(".")]
        if files:
            return [SourceFile(p) for p in sorted(files, key=lambda p: natural_key(p.name))]
    raise InputError(f"{folder}: no .json files in this folder (nor in {folder / 'data'}); pass MPD slices.")


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def _zip_members(path: Path) -> list[SourceFile]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: cannot read the zip archive ({exc}). Re-download or re-copy it.") from None
    members = [n for n in names if SLICE_PATTERN.search(n.rsplit("/", 1)[-1])]
    if not members:
        raise InputError(f"{path}: no mpd.slice.*.json files inside this zip; is it the MPD archive?")
    return [SourceFile(path, m) for m in sorted(members, key=lambda n: natural_key(n.rsplit("/", 1)[-1]))]


def read_source(source: SourceFile) -> bytes:
    """The raw bytes of a source (a zip member is decompressed, nothing else is extracted)."""
    if source.member is None:
        return source.path.read_bytes()
    with zipfile.ZipFile(source.path) as archive:
        return archive.read(source.member)


def _json_error(name: str, data: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        return (f"{name}: not valid UTF-8 at byte {bad.start:,} (line {line}): {bad.reason} "
                f"(byte {data[bad.start:bad.start + 1].hex()}). JSON files must be UTF-8; re-export or re-copy "
                f"the file. {_SKIP_HINT}")
    if not data.strip():
        return f"{name}: the file is empty, not MPD JSON. {_SKIP_HINT}"
    where = f"line {exc.lineno}, column {exc.colno} (character {exc.pos})"
    message = f"{name}: not valid JSON at {where}: {exc.msg}."
    if exc.msg.startswith("unexpected end") or exc.pos >= len(data.decode("utf-8", "replace").rstrip()):
        message += " The file ends early: it looks truncated (an interrupted download or copy?)."
    return f"{message} {_SKIP_HINT}"


def _playlists_of(doc, name: str) -> tuple[str, object]:
    """Find the playlist array and the kind of document (``slice``, ``challenge`` or ``list``)."""
    if isinstance(doc, list):
        return "list", doc
    if not isinstance(doc, dict) or "playlists" not in doc:
        got = "an object without 'playlists'" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise InputError(
            f"{name}: expected an MPD slice or challenge set (an object with a 'playlists' array), got {got}. "
            + _SKIP_HINT
        )
    playlists = doc["playlists"]
    first = playlists[0] if isinstance(playlists, list) and playlists else None
    return document_kind("info" in doc, "date" in doc, isinstance(first, dict) and "num_holdouts" in first), playlists


def parse_source(source: SourceFile, skip_invalid: bool = False) -> _Result:
    """Read, hash, decode and validate one source; errors come back as text (workers never raise).

    A file whose playlists are all valid is read straight into Arrow columns; anything else is decoded
    again with orjson and checked playlist by playlist, which words the error or skips the bad playlist.
    """
    info: dict = {"path": str(source.path.absolute())}
    if source.member:
        info["member"] = source.member
    try:
        data = read_source(source)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:  # zip: CRC/truncation errors
        return _Result(source, info, error=f"{source.name}: cannot read the file ({exc}). {_SKIP_HINT}")
    info["size"] = len(data)
    info["sha256"] = hashlib.sha256(data).hexdigest()
    data = strip_bom(data)
    fast = parse_document_fast(data, source.name)
    if fast is not None:
        info["kind"], parsed = fast
        info["playlists"] = parsed.n_playlists
        return _Result(source, info, parsed=parsed)
    try:
        doc, replaced = decode_json(data)
    except orjson.JSONDecodeError as exc:
        return _Result(source, info, error=_json_error(source.name, data, exc))
    del data
    try:
        kind, playlists = _playlists_of(doc, source.name)
        info["kind"] = kind
        parsed = parse_playlists(playlists, source.name, skip_invalid=skip_invalid, challenge=kind == "challenge")
    except InputError as exc:
        return _Result(source, info, error=str(exc))
    if replaced:
        parsed.warnings["lone_surrogates_replaced"] = replaced
    if kind == "list":
        parsed.warnings["top_level_list"] = 1
    info["playlists"] = parsed.n_playlists
    if parsed.skipped:
        info["playlists_skipped"] = len(parsed.skipped)
    return _Result(source, info, parsed=parsed)


def _parse_task(task: tuple[SourceFile, bool]) -> _Result:
    return parse_source(*task)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _quiet_worker() -> None:
    """Workers leave signals to the main process, which stops them and cleans up (no worker tracebacks):
    Ctrl-C reaches the whole process group, and a forked worker inherits the CLI's handlers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _prefetch(source: SourceFile) -> None:
    """Ask the kernel to start reading a queued file now, so a worker finds it in memory rather than
    waiting on the disk (the full MPD is 31 GB: more than the page cache of most machines)."""
    if source.member is not None or not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(source.path, os.O_RDONLY)
    except OSError:  # the worker reports it
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


class _ParsedStream:
    """Parse results in input order, with at most ``2 * workers`` slices in flight at any time.

    Worker processes start (and the first tasks are queued) on construction, before any progress-bar
    thread exists, so forking is safe. ``workers`` 0, or a single file, parses in this process.
    """

    def __init__(self, sources: list[SourceFile], skip_invalid: bool, workers: int) -> None:
        self._tasks = iter([(source, skip_invalid) for source in sources])
        self._pending: deque[Future] = deque()
        self._executor = None
        if workers >= 1 and len(sources) > 1:
            # pyarrow's compute kernels take ~0.5 s to load on first use: load them once, before forking
            pa.array([""]).dictionary_encode()
            # fork is cheapest and the parent holds nothing big yet; elsewhere fall back to spawn
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._executor = ProcessPoolExecutor(
                min(workers, len(sources)), mp_context=multiprocessing.get_context(method),
                initializer=_quiet_worker,
            )
            for _ in range(2 * workers):
                if not self._submit():
                    break

    def _submit(self) -> bool:
        task = next(self._tasks, None)
        if task is None:
            return False
        _prefetch(task[0])
        self._pending.append(self._executor.submit(_parse_task, task))
        return True

    def __iter__(self) -> Iterator[_Result]:
        if self._executor is None:
            yield from map(_parse_task, self._tasks)
            return
        while self._pending:
            future = self._pending.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                raise SegueError(
                    "a parsing worker process died unexpectedly (out of memory?); "
                    "retry with fewer --workers."
                ) from None
            self._submit()
            yield result

    def __enter__(self) -> "_ParsedStream":
        return self

    def __exit__(self, *exc) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def ingest(
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    skip_invalid: bool = False,
    workers: int | None = None,
    progress: bool = False,
    force: bool = False,
) -> Store:
    """Ingest MPD JSON into a new store at ``out`` (replacing a store there only on success).

    ``sources`` are slice files, folders of slices, the official MPD zip or challenge-set files. Bad
    input raises :class:`InputError` naming the file and position, pid or field; with ``skip_invalid``
    bad playlists and unreadable files are skipped instead and listed in the manifest's ``skipped``.
    ``workers`` parse processes (default: one per available core; 0 parses in this process). ``force``
    replaces whatever is at ``out`` even when it is not a store (never one of the sources).
    """
    started = time.perf_counter()
    out = Path(out)
    files = resolve_sources(sources)
    workers = default_workers() if workers is None else max(0, int(workers))
    source_info: list[dict] = []
    file_skips: list[dict] = []
    with claim_output(out, STORE_OUTPUT, inputs=[f.path for f in files], force=force), atomic_dir(out) as tmp:
        builder = StoreBuilder(tmp, skip_invalid=skip_invalid)
        try:
            with (
                _ParsedStream(files, skip_invalid, workers) as results,
                progress_task("ingest", total=len(files), enabled=progress) as advance,
            ):
                for result in results:
                    source_info.append(result.info)
                    if result.error is not None:
                        if not skip_invalid:
                            raise InputError(result.error)
                        log.info("skipped %s", result.error)
                        result.info["skipped"] = True
                        file_skips.append({"file": result.source.name, "position": None, "pid": None,
                                           "reason": skip_reason(result.error)})
                    else:
                        builder.add(result.parsed)
                    elapsed = max(time.perf_counter() - started, 1e-9)
                    advance(1, playlists=builder.n_playlists, rate=f"{builder.n_playlists / elapsed:,.0f}/s")
            if builder.n_playlists == 0:
                raise InputError(
                    f"no playlists were read from {', '.join(f.name for f in files[:3])}"
                    f"{' ...' if len(files) > 3 else ''}; nothing to store."
                )
            seconds = round(time.perf_counter() - started, 3)
            manifest = builder.finish(
                {
                    "sources": source_info,
                    "skipped": file_skips + builder.skipped,
                    "ingest": {"seconds": seconds, "workers": workers, "skip_invalid": skip_invalid},
                }
            )
        except BaseException:
            builder.abort()
            raise
    log.info("ingested %s playlists into %s", manifest["counts"]["playlists"], out)
    return Store.open(out)


def summary_line(store: Store) -> str:
    """One line saying what an ingest did, from the store's manifest."""
    manifest = store.manifest
    counts = manifest["counts"]
    skipped = manifest.get("skipped", [])
    files_skipped = sum(1 for s in skipped if s.get("pid") is None and s.get("position") is None)
    n_warnings = sum(manifest.get("warnings", {}).values())
    seconds = manifest.get("ingest", {}).get("seconds", 0.0)
    n_files = len(manifest.get("sources", []))
    return (
        f"ingested {plural(counts['playlists'], 'playlist')} "
        f"({plural(counts['entries'], 'track entry', 'track entries')}, {plural(counts['tracks'], 'unique track')}, {plural(counts['artists'], 'artist')}, "
        f"{plural(counts['albums'], 'album')}) from {plural(n_files, 'file')} in {seconds:.1f} s; skipped "
        f"{plural(len(skipped) - files_skipped, 'playlist')} and {plural(files_skipped, 'file')}; "
        f"{plural(n_warnings, 'warning')} -> {store.path}"
    )


WARNING_TEXT = {  # what each warning counts: (one, many)
    "num_tracks_mismatch": ("playlist whose num_tracks differs from the length of its track list",
                            "playlists whose num_tracks differs from the length of their track list"),
    "num_samples_mismatch": ("challenge playlist whose num_samples differs from the length of its track list",
                             "challenge playlists whose num_samples differs from the length of their track list"),
    "lone_surrogates_replaced": ("string with a lone UTF-16 surrogate escape (half an emoji), kept with U+FFFD",
                                 "strings with a lone UTF-16 surrogate escape (half an emoji), kept with U+FFFD"),
    "pos_mismatch": ("playlist whose tracks' pos fields are not 0, 1, 2, ... (ignored: tracks keep file order)",
                     "playlists whose tracks' pos fields are not 0, 1, 2, ... (ignored: tracks keep file order)"),
    "top_level_list": ("file holding a bare JSON list of playlists, not an MPD slice object {\"playlists\": [...]}",
                       "files holding a bare JSON list of playlists, not an MPD slice object {\"playlists\": [...]}"),
}


def warning_line(kind: str, count: int) -> str:
    """``3 playlists whose ...`` for a manifest warning."""
    one, many = WARNING_TEXT.get(kind, (kind, kind))
    return f"{count:,} {one if count == 1 else many}"
