"""The challenge-set format of the RecSys Challenge 2018: categories, challenge JSON and answers, read and written.

Category inference (:func:`infer_category`), used when no category hint is available: from a
playlist's ``num_samples`` (0, 1, 5, 10, 25, 100), whether it has a ``name``, and, for 25 and 100
seeds, whether the seeds are the playlist's first tracks (their ``pos`` fields are exactly
0..num_samples-1; missing ``pos`` counts as "first"). 0 seeds -> 1; 1 -> 2; 5 -> 3 titled / 4 untitled;
10 -> 5 / 6; 25 -> 7 first / 8 random; 100 -> 9 first / 10 random. Anything else -> 0 ("other").
A random draw that happens to be exactly the first positions would be read as "first"; ``segue split``
therefore also records each pid's category in ``split.json``, which takes precedence when present.

Submissions (files of recommendations for a challenge set) are evaluation's: :mod:`segue.evaluate.submission`.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segue.errors import InputError
from segue.io import read_json, write_json


@dataclass(frozen=True)
class Category:
    """One of the challenge set's ten categories: how many seed tracks, whether the title is given, and
    whether the seeds are the first tracks or a random sample."""

    number: int
    num_samples: int
    titled: bool
    random: bool
    description: str


CATEGORIES = (
    Category(1, 0, True, False, "title only"),
    Category(2, 1, True, False, "title + first 1"),
    Category(3, 5, True, False, "title + first 5"),
    Category(4, 5, False, False, "first 5, no title"),
    Category(5, 10, True, False, "title + first 10"),
    Category(6, 10, False, False, "first 10, no title"),
    Category(7, 25, True, False, "title + first 25"),
    Category(8, 25, True, True, "title + 25 random"),
    Category(9, 100, True, False, "title + first 100"),
    Category(10, 100, True, True, "title + 100 random"),
)
CATEGORY_NAMES = {0: "other", **{c.number: c.description for c in CATEGORIES}}


@dataclass
class ChallengeSet:
    """A challenge set as arrays: seeds as a CSR over URIs, one row per challenge playlist."""

    pids: np.ndarray  # (n,) int64
    names: list[str | None]  # None in untitled categories
    seed_indptr: np.ndarray  # (n + 1,) int64
    seed_uris: list[str]  # concatenated seed URIs, playlist order
    seed_pos: np.ndarray  # (n_seeds,) int64, -1 when missing
    num_samples: np.ndarray
    num_holdouts: np.ndarray
    num_tracks: np.ndarray
    categories: np.ndarray  # (n,) int64, 1..10 or 0
    path: Path | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_pids(cls, pids) -> "ChallengeSet":
        """Playlists known only by pid: no titles, no seeds, category 0 (scoring answers without a challenge set)."""
        pids = np.asarray(pids, dtype=np.int64)
        zeros = np.zeros(len(pids), dtype=np.int64)
        return cls(pids=pids, names=[None] * len(pids), seed_indptr=np.zeros(len(pids) + 1, np.int64), seed_uris=[],
                   seed_pos=np.zeros(0, np.int64), num_samples=zeros, num_holdouts=zeros.copy(),
                   num_tracks=zeros.copy(), categories=zeros.copy())

    def __len__(self) -> int:
        return len(self.pids)

    def seeds_of(self, row: int) -> list[str]:
        return self.seed_uris[self.seed_indptr[row] : self.seed_indptr[row + 1]]

    def row_of_pid(self) -> dict[int, int]:
        return {pid: i for i, pid in enumerate(self.pids.tolist())}

    def first_seeds(self) -> np.ndarray:
        """(n,) bool: whether each playlist's seeds are its first tracks (:func:`seeds_are_first`), not a random
        sample of its positions."""
        bounds = self.seed_indptr.tolist()
        return np.fromiter((seeds_are_first(self.seed_pos[a:b].tolist()) for a, b in zip(bounds, bounds[1:])),
                           dtype=bool, count=len(self))


def seeds_are_first(positions: Sequence[int] | None) -> bool:
    """Whether seeds at ``positions`` (-1: missing) are the playlist's first tracks in order: ``pos`` exactly
    0..k-1, or missing throughout."""
    return positions is None or all(p < 0 for p in positions) or list(positions) == list(range(len(positions)))


def infer_category(num_samples: int, titled: bool, positions: Sequence[int] | None) -> int:
    """Category 1..10 of one challenge playlist (0 when it matches none); see the module docstring."""
    first = seeds_are_first(positions)
    for cat in CATEGORIES:
        if cat.num_samples != num_samples:
            continue
        if num_samples in (5, 10) and cat.titled != titled:
            continue
        if num_samples in (25, 100) and cat.random == first:
            continue
        return cat.number
    return 0


MAX_ID = 2**62  # pids and counts beyond this cannot be real (and would overflow int64 arrays)


def _challenge_playlists(data, source: str) -> list[dict]:
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        raise InputError(f"{source}: not a challenge set (expected an object with a 'playlists' list).")
    if not data["playlists"]:
        raise InputError(f"{source}: the challenge set has no playlists; nothing to recommend for or score. "
                         "Use a challenge_set.json written by `segue split` or the official one.")
    return data["playlists"]


def _whole_number(value, field: str, where: str, optional: bool = True) -> int | None:
    """``value`` as an int in [0, MAX_ID], None when absent (and ``optional``); else a clear InputError."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        shown = repr(value) if not isinstance(value, (list, dict)) else type(value).__name__
        raise InputError(f"{where}: field {field!r} should be a non-negative integer, got {shown[:60]}.")
    return value


def parse_challenge(data: dict, source: str = "<memory>", hints: dict[int, int] | None = None) -> ChallengeSet:
    """Build a :class:`ChallengeSet` from the decoded JSON; ``hints`` maps pid -> category.

    Every field is checked: a wrong type, an out-of-range number or inconsistent counts raise an
    :class:`InputError` naming the file, the playlist's position and the field."""
    playlists = _challenge_playlists(data, source)
    n = len(playlists)
    pids = np.zeros(n, dtype=np.int64)
    names: list[str | None] = []
    counts = np.zeros((n, 3), dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    uris: list[str] = []
    pos: list[int] = []
    categories = np.zeros(n, dtype=np.int64)
    seen: set[int] = set()
    for i, p in enumerate(playlists):
        where = f"{source}: playlists[{i}]"
        if not isinstance(p, dict):
            raise InputError(f"{where} is not an object; every challenge playlist is one.")
        if p.get("pid") is None:
            raise InputError(f"{where} has no integer 'pid'; every challenge playlist needs one.")
        pid = _whole_number(p["pid"], "pid", where, optional=False)
        where = f"{where} (pid {pid})"
        if pid in seen:
            raise InputError(f"{where}: pid {pid} appears twice in the challenge set.")
        seen.add(pid)
        tracks = p.get("tracks", [])
        if not isinstance(tracks, list):
            raise InputError(f"{where}: field 'tracks' should be a list.")
        row_pos = []
        for j, t in enumerate(tracks):
            if not isinstance(t, dict) or not isinstance(t.get("track_uri"), str):
                raise InputError(f"{where}: tracks[{j}] has no string 'track_uri'.")
            uris.append(t["track_uri"])
            position = _whole_number(t.get("pos"), "pos", f"{where}: tracks[{j}]")
            row_pos.append(-1 if position is None else position)
        pos.extend(row_pos)
        pids[i] = pid
        name = p.get("name")
        if name is not None and not isinstance(name, str):
            raise InputError(f"{where}: field 'name' should be a string (or absent in untitled categories).")
        names.append(name)
        lengths[i] = len(tracks)
        samples = _whole_number(p.get("num_samples"), "num_samples", where)
        holdouts = _whole_number(p.get("num_holdouts"), "num_holdouts", where)
        total = _whole_number(p.get("num_tracks"), "num_tracks", where)
        if samples is not None and samples != len(tracks):
            raise InputError(f"{where}: num_samples is {samples} but the playlist has {len(tracks)} seed tracks.")
        samples = len(tracks)
        if holdouts is not None and total is not None and samples + holdouts != total:
            raise InputError(f"{where}: num_samples + num_holdouts = {samples + holdouts}, but num_tracks is {total}.")
        if total is None:
            total = samples + holdouts if holdouts is not None else -1
        counts[i] = (samples, -1 if holdouts is None else holdouts, total)
        if hints and pid in hints:
            categories[i] = hints[pid]
        else:
            categories[i] = infer_category(len(tracks), name is not None, row_pos)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return ChallengeSet(pids=pids, names=names, seed_indptr=indptr, seed_uris=uris,
                        seed_pos=np.asarray(pos, dtype=np.int64), num_samples=counts[:, 0],
                        num_holdouts=counts[:, 1], num_tracks=counts[:, 2], categories=categories,
                        raw=data)


def category_hints_beside(path: Path) -> dict[int, int] | None:
    """pid -> category from a ``split.json`` next to the challenge set, if there is one."""
    split_json = path.parent / "split.json"
    if not split_json.is_file():
        return None
    try:
        info = read_json(split_json)
    except Exception:  # a foreign or damaged file is simply not a hint
        return None
    cats = info.get("categories_by_pid") if isinstance(info, dict) else None
    if not isinstance(cats, dict):
        return None
    try:
        return {int(pid): int(cat) for pid, cat in cats.items()}
    except (TypeError, ValueError):  # not ours: infer the categories instead
        return None


def _read_json_file(path: Path, missing: str):
    if not path.is_file():
        raise InputError(missing)
    try:
        return read_json(path)
    except Exception as exc:
        raise InputError(f"{path}: not valid JSON ({exc}).") from None


def load_challenge(path: str | os.PathLike, use_hints: bool = True) -> ChallengeSet:
    """Read ``challenge_set.json``; categories come from a ``split.json`` beside it, else are inferred."""
    path = Path(path)
    data = _read_json_file(path, f"challenge set {path} does not exist; make one with `segue split`.")
    hints = category_hints_beside(path) if use_hints else None
    challenge = parse_challenge(data, str(path), hints)
    challenge.path = path
    return challenge


def load_answers(path: str | os.PathLike) -> dict[int, list[str]]:
    """Read ``answers.json`` (``{pid: [held-out URIs]}``) into ``{int pid: [uri, ...]}``."""
    path = Path(path)
    data = _read_json_file(
        path, f"answers file {path} does not exist; `segue split` writes one beside the challenge set."
    )
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object mapping pid to a list of track URIs.")
    if not data:
        raise InputError(f"{path}: the answers file is empty; use the answers.json `segue split` wrote.")
    out = {}
    for key, uris in data.items():
        try:
            pid = int(key)
        except ValueError:
            pid = -1
        if not 0 <= pid <= MAX_ID:
            raise InputError(f"{path}: key {key[:40]!r} is not a pid (a non-negative integer).")
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise InputError(f"{path}: pid {key}: expected a list of track URI strings.")
        out[pid] = uris
    return out


def write_challenge_json(path: str | os.PathLike, playlists: list[dict]) -> None:
    write_json(path, {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
        "version": "v1",
        "playlists": playlists,
    })
