"""Atomic writes (build beside the target, then rename, so a crash never leaves a half-written artifact)
and JSON reading."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``target``; on success it replaces ``target``.

    On any exception the temporary directory is removed and an existing ``target`` is left untouched.
    """
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup = None
    if target.exists():
        backup = target.parent / f".{target.name}.old-{os.getpid()}"
        if backup.exists():
            shutil.rmtree(backup)
        os.replace(target, backup)
    try:
        os.replace(tmp, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; on success it is renamed onto ``target``."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")


def read_json(path: str | os.PathLike):
    """A JSON file's content (a leading UTF-8 byte order mark ignored); see :func:`decode_json`."""
    return decode_json(strip_bom(Path(path).read_bytes()))[0]


def strip_bom(data: bytes) -> bytes:
    """Without a leading UTF-8 byte order mark (some editors add one when they save a file)."""
    return data[3:] if data[:3] == b"\xef\xbb\xbf" else data


def decode_json(data: bytes) -> tuple[object, int]:
    """Decode JSON with orjson; returns (document, strings whose lone surrogates were replaced).

    MPD-style files write non-ASCII as ``\\uXXXX`` escapes, and a title cut in the middle of an emoji
    leaves half a surrogate pair. Strict decoders (orjson) reject that, Python's json keeps it, and UTF-8
    (Parquet, HTTP) cannot hold it: such a file is decoded by Python's json and each string with a lone
    surrogate keeps its text with U+FFFD in the gap. Raises ``orjson.JSONDecodeError`` for anything that is
    not JSON.
    """
    try:
        return orjson.loads(data), 0
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in exc.msg:
            raise
        try:
            doc = json.loads(data)
        except ValueError:
            raise exc from None
    changed = 0

    def clean(value):
        nonlocal changed
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                changed += 1
                return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return value
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        return value

    return clean(doc), changed
