"""Safe outputs (checked, locked, written beside the target and renamed, so a crash or a signal never
leaves a half-written artifact or loses the old one) and JSON reading."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from segue.errors import Interrupted, OutputError, raise_if_interrupted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputKind:
    """A kind of output a command writes, recognised by a JSON marker file whose ``key`` holds ``value``
    (any string when ``value`` is None). ``directory`` False: a single file, replaced when it is a file."""

    noun: str
    directory: bool = True
    marker: str | None = None
    key: str | None = None
    value: str | None = None
    recognise: Callable[[Path], bool] | None = None  # for a file kind: whether a file is one of its outputs

    def owns(self, path: Path) -> bool:
        """Whether ``path`` is an output of this kind (so it may be replaced)."""
        if not self.directory:
            return path.is_file() and (self.recognise is None or self.recognise(path))
        if not path.is_dir():
            return False
        if not any(path.iterdir()):
            return True
        try:
            found = read_json(path / self.marker).get(self.key)
        except (OSError, ValueError, AttributeError):
            return False
        return isinstance(found, str) if self.value is None else found == self.value


STORE_OUTPUT = OutputKind("a segue store", marker="manifest.json", key="format", value="segue-store")
MODEL_OUTPUT = OutputKind("a segue model", marker="config.json", key="model")
SPLIT_OUTPUT = OutputKind("a segue split", marker="split.json", key="format", value="segue-split")
SYNTH_OUTPUT = OutputKind("a segue synth folder", marker=".segue-synth.json", key="format", value="segue-synth")
FILE_OUTPUT = OutputKind("a file", directory=False)
_DIRECTORY_KINDS = (STORE_OUTPUT, MODEL_OUTPUT, SPLIT_OUTPUT, SYNTH_OUTPUT)


def describe_path(path: Path) -> str:
    """What is at ``path``, in words, for messages that refuse to replace it."""
    if path.is_symlink() and not path.exists():
        return "a broken symbolic link"
    if not path.is_dir():
        return "a file" if path.is_file() else "something that is neither a file nor a folder"
    for kind in _DIRECTORY_KINDS:
        if (path / kind.marker).exists() and kind.owns(path):
            return kind.noun
    try:
        names = sorted(p.name for p in path.iterdir())
    except OSError as exc:
        return f"a folder that cannot be listed ({exc.strerror})"
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"a folder of {plural(len(names), 'entry', 'entries')} ({shown})"


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """``1 playlist``, ``2 playlists`` (thousands separated)."""
    return f"{n:,} {singular if n == 1 else plural_form or singular + 's'}"


def _inside(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


@contextlib.contextmanager
def claim_output(path: str | os.PathLike | None, kind: OutputKind, *, inputs: Iterable[str | os.PathLike] = (),
                 force: bool = False, flag: str = "--out") -> Iterator[Path | None]:
    """Check that ``path`` may be written as ``kind`` and hold a lock on it while the caller writes.

    Before any work: refuses an output that is one of ``inputs``, inside one, or holds one; refuses to
    replace anything that is not ``kind`` (unless ``force``, never for an input); checks the folder it goes
    in can be written; takes an exclusive lock file beside it (``.NAME.lock``), so a second writer fails at
    once naming the first. On an interrupt the exception says which outputs were left unchanged.
    ``path`` None (an optional output not asked for) claims nothing.
    """
    if path is None:
        yield None
        return
    path = Path(path).absolute()
    resolved = path.resolve()
    for item in inputs:
        source = Path(item).resolve()
        if _inside(resolved, source) or (kind.directory and _inside(source, resolved)):
            relation = "is" if resolved == source else "is inside" if _inside(resolved, source) else "holds"
            raise OutputError(f"{flag} {path} {relation} the input {Path(item).absolute()}; writing there "
                              f"would destroy it. Choose another {flag}.")
    _check_replaceable(path, kind, force, flag)
    parent = _writable_parent(path)
    with _output_lock(path, parent):
        try:
            yield path
        except Interrupted as exc:
            exc.outputs.append(path)
            raise
        except KeyboardInterrupt:
            raise Interrupted(signal.SIGINT, [path]) from None


@contextlib.contextmanager
def claim_outputs(claims: Iterable[tuple[str | os.PathLike | None, str]], kind: OutputKind, *,
                  inputs: Iterable[str | os.PathLike] = ()) -> Iterator[None]:
    """:func:`claim_output` for several ``(path or None, flag)`` outputs of one command at once."""
    inputs = list(inputs)
    with contextlib.ExitStack() as stack:
        for path, flag in claims:
            stack.enter_context(claim_output(path, kind, inputs=inputs, flag=flag))
        yield


def _check_replaceable(path: Path, kind: OutputKind, force: bool, flag: str) -> None:
    if not (path.exists() or path.is_symlink()) or kind.owns(path):
        return
    what = describe_path(path)
    if kind.directory and not path.is_dir() or not kind.directory and path.is_dir():
        raise OutputError(f"{flag} {path} is {what}, not {kind.noun}; choose another {flag}.")
    if not force:
        raise OutputError(f"{flag} {path} is {what}, not {kind.noun}; refusing to replace it. "
                          f"Choose another {flag}, or pass --force to replace it.")
    log.warning("replacing %s (%s), as --force asks", path, what)


def _writable_parent(path: Path) -> Path:
    """The folder ``path`` goes in, created if missing; an OutputError when that cannot be."""
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputError(f"cannot write {path}: {ancestor} is a file, not a folder.")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    return path.parent


@contextlib.contextmanager
def _output_lock(path: Path, parent: Path) -> Iterator[None]:
    lock = parent / f".{path.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise OutputError(f"{path} is being written by {holder}; wait for it to finish, or choose another "
                              "output.") from None
        # the holder before us may have removed the file after we opened it: lock the file that is there
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"segue (pid {os.getpid()}: {' '.join(sys.argv)[:200]})".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _cannot_write(target: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {target}: {exc.strerror or exc}.")


def _write_error(target: Path, tmp: Path, exc: OSError) -> OSError | OutputError:
    """An OSError from writing into ``tmp`` as a clear OutputError; others (reading inputs) unchanged."""
    if exc.filename is not None and not _inside(Path(exc.filename).absolute(), tmp):
        return exc
    return _cannot_write(target, exc)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``target``; on success it replaces ``target``.

    On any exception (signals included) the temporary directory is removed and an existing ``target``
    is left untouched. An old copy that cannot be removed afterwards is reported, not left silently.
    """
    target = Path(target).absolute()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private (0700): give it the mode mkdir would
        yield tmp
    except OSError as exc:
        _remove_quietly(tmp)
        raise _write_error(target, tmp, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    committed, backup = False, None
    try:
        if target.exists():
            backup = target.parent / f".{target.name}.old-{os.getpid()}"
            _remove_quietly(backup)  # one left by an earlier run with this pid
        with _signals_deferred():
            raise_if_interrupted()  # an interrupt whose raise was dropped still stops the commit
            try:
                if backup is not None:
                    os.replace(target, backup)
                os.replace(tmp, target)
            except OSError as exc:
                if backup is not None and backup.exists():
                    os.replace(backup, target)
                raise _cannot_write(target, exc) from None
            committed = True
    finally:  # a signal held during the renames arrives here: clean up all the same
        if not committed:
            _remove_quietly(tmp)
        elif backup is not None:
            _remove_quietly(backup)
            if backup.exists():
                log.warning("the old %s is left at %s (it could not be removed); delete it yourself",
                            target.name, backup)


def _remove_quietly(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a few renames run, so an interrupt cannot fall between them."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; on success it is renamed onto ``target``."""
    target = Path(target).absolute()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        raise_if_interrupted()  # an interrupt whose raise was dropped still stops the commit
        os.replace(tmp, target)
    except OSError as exc:
        raise _write_error(target, tmp, exc) from exc
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
