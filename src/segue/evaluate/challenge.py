"""The challenge set, answers and submission files of the RecSys Challenge 2018, read and written.

Category inference (:func:`infer_categories`), used when no category hint is available: from a
playlist's ``num_samples`` (0, 1, 5, 10, 25, 100), whether it has a ``name``, and, for 25 and 100
seeds, whether the seeds are the playlist's first tracks (their ``pos`` fields are exactly
0..num_samples-1; missing ``pos`` counts as "first"). 0 seeds -> 1; 1 -> 2; 5 -> 3 titled / 4 untitled;
10 -> 5 / 6; 25 -> 7 first / 8 random; 100 -> 9 first / 10 random. Anything else -> 0 ("other").
A random draw that happens to be exactly the first positions would be read as "first"; ``segue split``
therefore also records each pid's category in ``split.json``, which takes precedence when present.

Submissions follow the official checker: ``#`` comments and blank lines are ignored, whitespace
around commas is allowed, the first data line is ``team_info,...``, then one ``pid,uri×500`` line per
challenge playlist.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segue.errors import InputError
from segue.io import atomic_path, read_json, write_json

TRACK_URI = re.compile(r"^spotify:track:[0-9A-Za-z]{22}$")
SUBMISSION_TRACKS = 500
CHALLENGE_TRACKS = ("main", "creative")
TRACK_FIELDS = ("pos", "artist_name", "track_uri", "artist_uri", "track_name", "album_uri", "duration_ms",
                "album_name")

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

    def __len__(self) -> int:
        return len(self.pids)

    def seeds_of(self, row: int) -> list[str]:
        return self.seed_uris[self.seed_indptr[row] : self.seed_indptr[row + 1]]

    def row_of_pid(self) -> dict[int, int]:
        return {pid: i for i, pid in enumerate(self.pids.tolist())}


def infer_category(num_samples: int, titled: bool, positions: Sequence[int] | None) -> int:
    """Category 1..10 of one challenge playlist (0 when it matches none); see the module docstring."""
    first = positions is None or all(p < 0 for p in positions) or list(positions) == list(range(len(positions)))
    for cat in CATEGORIES:
        if cat.num_samples != num_samples:
            continue
        if num_samples in (5, 10) and cat.titled != titled:
            continue
        if num_samples in (25, 100) and cat.random == first:
            continue
        return cat.number
    return 0


def _challenge_playlists(data, source: str) -> list[dict]:
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        raise InputError(f"{source}: not a challenge set (expected an object with a 'playlists' list).")
    return data["playlists"]


def parse_challenge(data: dict, source: str = "<memory>", hints: dict[int, int] | None = None) -> ChallengeSet:
    """Build a :class:`ChallengeSet` from the decoded JSON; ``hints`` maps pid -> category."""
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
        if not isinstance(p, dict) or not isinstance(p.get("pid"), int):
            raise InputError(f"{where} has no integer 'pid'; every challenge playlist needs one.")
        pid = p["pid"]
        if pid in seen:
            raise InputError(f"{where}: pid {pid} appears twice in the challenge set.")
        seen.add(pid)
        tracks = p.get("tracks", [])
        if not isinstance(tracks, list):
            raise InputError(f"{where} (pid {pid}): 'tracks' should be a list.")
        row_pos = []
        for j, t in enumerate(tracks):
            if not isinstance(t, dict) or not isinstance(t.get("track_uri"), str):
                raise InputError(f"{where} (pid {pid}): tracks[{j}] has no string 'track_uri'.")
            uris.append(t["track_uri"])
            row_pos.append(int(t["pos"]) if isinstance(t.get("pos"), int) else -1)
        pos.extend(row_pos)
        pids[i] = pid
        name = p.get("name")
        names.append(name if isinstance(name, str) else None)
        lengths[i] = len(tracks)
        samples = p.get("num_samples", len(tracks))
        holdouts = p.get("num_holdouts", -1)
        counts[i] = (samples, holdouts, p.get("num_tracks", samples + holdouts if holdouts >= 0 else -1))
        if hints and pid in hints:
            categories[i] = hints[pid]
        else:
            categories[i] = infer_category(len(tracks), names[-1] is not None, row_pos)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return ChallengeSet(pids=pids, names=names, seed_indptr=indptr, seed_uris=uris,
                        seed_pos=np.asarray(pos, dtype=np.int64), num_samples=counts[:, 0],
                        num_holdouts=counts[:, 1], num_tracks=counts[:, 2], categories=categories,
                        raw=data if isinstance(data, dict) else {})


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
    return {int(pid): int(cat) for pid, cat in cats.items()}


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
    out = {}
    for key, uris in data.items():
        try:
            pid = int(key)
        except ValueError:
            raise InputError(f"{path}: key {key!r} is not a pid (an integer).") from None
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


# ---- submission files ------------------------------------------------------------------------------
def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def team_info_line(team: str, email: str, track: str | None = "main") -> str:
    for label, value in (("team", team), ("email", email)):
        if "," in value or "\n" in value:
            raise InputError(f"the {label} {value!r} contains a comma or newline; the submission format forbids that.")
    if track is not None and track not in CHALLENGE_TRACKS:
        raise InputError(f"challenge track {track!r} must be one of {', '.join(CHALLENGE_TRACKS)}.")
    return ",".join(["team_info", team] + ([track] if track else []) + [email])


def write_submission(path: str | os.PathLike, pids: Sequence[int], rows: Sequence[Sequence[str]],
                     team: str = "segue", email: str = "segue@example.com", track: str | None = "main") -> Path:
    """Write a submission atomically; gzip when the name ends in ``.gz``."""
    path = Path(path)
    header = team_info_line(team, email, track)
    body = "\n".join([header] + [",".join([str(int(pid)), *uris]) for pid, uris in zip(pids, rows)]) + "\n"
    with atomic_path(path) as tmp:
        if path.name.endswith(".gz"):
            with gzip.open(tmp, "wb", compresslevel=6) as fh:
                fh.write(body.encode("utf-8"))
        else:
            tmp.write_text(body, encoding="utf-8")
    return path


@dataclass
class Submission:
    team_info: list[str] | None
    pids: list[int]
    rows: list[list[str]]
    lines: list[int]  # line number (1-based) of each pid row


def read_submission(path: str | os.PathLike) -> tuple[Submission, list[str]]:
    """Parse a submission (gzip or plain); returns it plus format errors (``line N: ...``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"submission {path} does not exist.")
    errors: list[str] = []
    team = None
    pids: list[int] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with _open_text(path) as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                fields = [f.strip() for f in line.split(",")]
                if fields[0] == "team_info":
                    if team is not None:
                        errors.append(f"line {number}: a second team_info line; only one is allowed.")
                    elif pids:
                        errors.append(f"line {number}: team_info must be the first non-comment line.")
                    team = fields[1:]
                    if len(team) not in (2, 3) or not all(team):
                        errors.append(
                            f"line {number}: team_info should be 'team_info,<team name>,<main|creative>,<email>' "
                            f"(or 'team_info,<team name>,<email>'), got {len(team)} non-empty fields."
                        )
                    elif len(team) == 3 and team[1] not in CHALLENGE_TRACKS:
                        errors.append(f"line {number}: challenge track {team[1]!r} must be 'main' or 'creative'.")
                    continue
                if team is None and not pids:
                    errors.append(f"line {number}: the first non-comment line must be team_info, got {fields[0]!r}.")
                try:
                    pid = int(fields[0])
                except ValueError:
                    errors.append(f"line {number}: {fields[0][:40]!r} is not a pid (an integer).")
                    continue
                pids.append(pid)
                rows.append(fields[1:])
                lines.append(number)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read the submission ({exc}).") from None
    if team is None:
        errors.insert(0, "line 1: no team_info line; the file must start with 'team_info,<team>,<track>,<email>'.")
    return Submission(team, pids, rows, lines), errors


def verify_submission(path: str | os.PathLike, challenge: ChallengeSet, n_tracks: int = SUBMISSION_TRACKS,
                      max_errors: int = 1000) -> list[str]:
    """Every check of the official checker; returns the failures (empty when the file is valid)."""
    submission, errors = read_submission(path)
    row_of = challenge.row_of_pid()
    seen: dict[int, int] = {}
    for pid, uris, number in zip(submission.pids, submission.rows, submission.lines):
        where = f"line {number} (pid {pid})"
        if pid in seen:
            errors.append(f"{where}: pid already given on line {seen[pid]}; each pid must appear exactly once.")
            continue
        seen[pid] = number
        row = row_of.get(pid)
        if row is None:
            errors.append(f"{where}: pid is not in the challenge set.")
            continue
        if len(uris) != n_tracks:
            errors.append(f"{where}: {len(uris)} tracks, expected exactly {n_tracks}.")
        bad = [u for u in uris if not TRACK_URI.match(u)]
        if bad:
            errors.append(f"{where}: {len(bad)} malformed track URI(s), e.g. {bad[0][:60]!r}; "
                          "expected 'spotify:track:' + 22 base-62 characters.")
        if len(set(uris)) != len(uris):
            dup = next(u for i, u in enumerate(uris) if u in uris[:i])
            errors.append(f"{where}: {len(uris) - len(set(uris))} duplicate track(s), e.g. {dup!r}.")
        seeds = set(challenge.seeds_of(row))
        in_seeds = [u for u in uris if u in seeds]
        if in_seeds:
            errors.append(f"{where}: {len(in_seeds)} seed track(s) of this playlist, e.g. {in_seeds[0]!r}; "
                          "seed tracks must not be recommended.")
        if len(errors) >= max_errors:
            errors.append(f"stopped after {max_errors} errors.")
            return errors
    missing = [pid for pid in challenge.pids.tolist() if pid not in seen]
    if missing:
        shown = ", ".join(str(p) for p in missing[:10])
        errors.append(f"end of file: {len(missing)} challenge pid(s) missing, e.g. {shown}.")
    return errors
