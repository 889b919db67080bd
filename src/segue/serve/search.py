"""Search-as-you-type over track, artist and album names: an SQLite FTS5 index built once per store.

The index is a contentless FTS5 table (names NFKC-normalised, then the ``unicode61`` tokenizer folds case and
removes diacritics) with prefix indexes for the first 1-3 characters of every word, so a query is a handful of
B-tree lookups, never a scan of the catalogue. Its rowids are popularity ranks (1 = the track in most playlists): FTS5 walks matches
in rowid order, so ``ORDER BY rowid LIMIT n`` returns the n most popular matches and stops there, even for a
one-letter prefix that matches half the catalogue.

Where it lives: ``STORE/search-index.sqlite`` when the store directory is writable (the index goes with the
store it describes), otherwise ``$XDG_CACHE_HOME/segue/search/<fingerprint>.sqlite``. It is claimed as an
output (``segue.io.claim_output``: writable folder, lock file), written to a temporary file and renamed into
place, and only ever replaces a file that is itself a segue search index (a stale one, for another vocabulary
or index version).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segue.data.store import Store
from segue.errors import InputError, StoreError
from segue.io import OutputKind, atomic_path, claim_output
from segue.progress import progress_task

log = logging.getLogger(__name__)

INDEX_FORMAT = "segue-search-index"
INDEX_VERSION = 1
INDEX_FILE = "search-index.sqlite"
MAX_QUERY_WORDS = 12
MMAP_BYTES = 1 << 30  # the index of the full MPD (2.26M tracks) is ~260 MB
_INSERT_BATCH = 50_000


def popularity_order(counts: np.ndarray) -> np.ndarray:
    """Track ids from most to least popular (ties: lower id first)."""
    return np.lexsort((np.arange(len(counts)), -np.asarray(counts, dtype=np.int64))).astype(np.int32)


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH expression for a typed query: every word must start some word of the track, artist or
    album name. Each word is quoted (so no user text is FTS5 syntax); None when no word has a letter or digit."""
    query = unicodedata.normalize("NFKC", query)  # as the index was built
    printable = "".join(c if c.isprintable() else " " for c in query)  # SQLite strings end at a NUL
    words = [w for w in printable.split() if any(c.isalnum() for c in w)][:MAX_QUERY_WORDS]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def default_index_path(store: Store) -> Path:
    """Beside the store when its directory is writable, else in the user's cache named by the fingerprint."""
    if os.access(store.path, os.W_OK):
        return store.path / INDEX_FILE
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "segue" / "search" / f"{store.fingerprint.split(':')[-1][:32]}.sqlite"


def _read_meta(path: Path) -> dict | None:
    """The index's meta table, or None when ``path`` is not a segue search index."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return None
    return meta if meta.get("format") == INDEX_FORMAT else None


SEARCH_INDEX_OUTPUT = OutputKind("a segue search index", directory=False,
                                 recognise=lambda path: _read_meta(path) is not None)


def _is_current(meta: dict | None, store: Store) -> bool:
    return bool(meta) and meta.get("version") == str(INDEX_VERSION) and meta.get("fingerprint") == store.fingerprint


def build_index(store: Store, path: Path, progress: bool = False) -> None:
    """Write the FTS5 index of ``store`` to ``path`` (atomically)."""
    order = popularity_order(store.track_count)
    names = store.tracks.select(["track_name", "artist_name", "album_name"]).take(pa.array(order))
    write_index(path, names, order, store.fingerprint, progress)


def write_index(path: Path, names: pa.Table, order: np.ndarray, fingerprint: str, progress: bool = False) -> None:
    """Write an index of ``names`` (track, artist, album name columns, most popular first; ``order[r]`` is the
    track id of row r) to ``path``, atomically."""
    started = time.perf_counter()
    with atomic_path(path) as tmp, contextlib.closing(sqlite3.connect(tmp)) as db:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")
        db.execute(
            "CREATE VIRTUAL TABLE names USING fts5(track, artist, album, content='', columnsize=0, "
            "tokenize='unicode61 remove_diacritics 2', prefix='1 2 3')"
        )
        with progress_task("search index", total=len(order), enabled=progress) as advance:
            for start in range(0, len(order), _INSERT_BATCH):
                chunk = names.slice(start, _INSERT_BATCH)
                rowids = range(start + 1, start + 1 + chunk.num_rows)  # rowid = popularity rank + 1
                # NFKC folds compatibility forms (full-width letters, ligatures) that unicode61 keeps apart;
                # executemany walks the zipped columns in C: no Python frame per track
                columns = (pc.utf8_normalize(chunk.column(i), "NFKC").to_pylist() for i in range(3))
                db.executemany("INSERT INTO names(rowid, track, artist, album) VALUES (?, ?, ?, ?)",
                               zip(rowids, *columns))
                advance(chunk.num_rows)
        db.execute("INSERT INTO names(names) VALUES ('optimize')")  # one segment: fewest lookups per query
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("format", INDEX_FORMAT), ("version", str(INDEX_VERSION)), ("fingerprint", fingerprint),
            ("n_tracks", str(len(order))), ("order", np.asarray(order).astype("<i4").tobytes()),
        ])
        db.commit()
    log.info("search index for %d tracks built in %.1f s: %s", len(order), time.perf_counter() - started, path)


class SearchIndex:
    """Prefix search over a store's track, artist and album names, most popular first."""

    def __init__(self, path: Path, order: np.ndarray) -> None:
        self.path = Path(path)
        self.order = order  # popularity rank -> track id
        self._local = threading.local()  # one read-only connection per thread (sqlite3 objects stay in theirs)

    @classmethod
    def open(cls, store: Store, path: str | os.PathLike | None = None, progress: bool = False) -> "SearchIndex":
        """Open the store's index, building it first when missing or stale."""
        path = Path(path) if path is not None else default_index_path(store)
        meta = _read_meta(path)
        if not _is_current(meta, store):
            if (path.exists() or path.is_symlink()) and meta is None:
                raise StoreError(f"{path} exists and is not a segue search index; move it away or pass another "
                                 "index path (--index).")
            # claimed like every output: a writable folder, a lock (a second server building it at the same
            # time fails at once, naming the first), never a path that is not a search index
            with claim_output(path, SEARCH_INDEX_OUTPUT, flag="--index"):
                if not _is_current(_read_meta(path), store):  # built meanwhile by a server that has finished
                    build_index(store, path, progress)
            meta = _read_meta(path)
        order = np.frombuffer(meta["order"], dtype="<i4").astype(np.int32)
        if len(order) != store.n_tracks:
            raise StoreError(f"{path}: the search index holds {len(order)} tracks, the store {store.n_tracks}; "
                             "delete the index file and start again.")
        return cls(path, order)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            # pages come from one shared memory map, not a private cache per thread: memory stays flat
            db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            db.execute("PRAGMA cache_size = -1024")
            self._local.db = db
        return db

    def search(self, query: str, limit: int = 10) -> np.ndarray:
        """Track ids whose names have a word starting with each word of ``query``, most popular first."""
        expression = match_expression(query)
        if expression is None or limit <= 0:
            return np.zeros(0, dtype=np.int32)
        try:
            rows = self._connection().execute(
                "SELECT rowid FROM names WHERE names MATCH ? ORDER BY rowid LIMIT ?", (expression, int(limit))
            ).fetchall()
        except sqlite3.OperationalError as exc:  # not expected: every word is quoted
            log.warning("search %r failed: %s", expression, exc)
            raise InputError(f"cannot search for {query!r} ({exc}); use letters and digits.") from None
        ranks = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)) - 1
        return self.order[ranks]
