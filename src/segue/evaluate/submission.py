"""Submission files of the RecSys Challenge 2018: written, read and checked as the official checker does.

Submissions follow the official checker: ``#`` comments and blank lines are ignored, whitespace
around commas is allowed, the first data line is ``team_info,...``, then one ``pid,uri×500`` line per
challenge playlist.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segue.data.challenge_set import ChallengeSet
from segue.errors import InputError
from segue.io import atomic_path

TRACK_URI = re.compile(r"^spotify:track:[0-9A-Za-z]{22}$")
SUBMISSION_TRACKS = 500
CHALLENGE_TRACKS = ("main", "creative")
PID = re.compile(r"^[0-9]{1,18}$")  # ASCII digits only, small enough for int64


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
                if not PID.match(fields[0]):
                    errors.append(f"line {number}: {fields[0][:40]!r} is not a pid (a non-negative integer).")
                    continue
                pids.append(int(fields[0]))
                rows.append(fields[1:])
                lines.append(number)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise InputError(f"{path}: cannot read the submission ({exc}).") from None
    if team is None:
        errors.insert(0, "line 1: no team_info line; the file must start with 'team_info,<team>,<track>,<email>'.")
    return Submission(team, pids, rows, lines), errors


def verify_submission(path: str | os.PathLike, challenge: ChallengeSet, n_tracks: int = SUBMISSION_TRACKS,
                      max_errors: int = 1000) -> list[str]:
    """Every check of the official checker; returns the failures (empty when the file is valid)."""
    _require_playlists(challenge)
    return check_submission(*read_submission(path), challenge, n_tracks, max_errors)


def _require_playlists(challenge: ChallengeSet) -> None:
    if len(challenge) == 0:
        raise InputError("the challenge set has no playlists; there is nothing a submission could be checked against.")


def check_submission(submission: Submission, errors: list[str], challenge: ChallengeSet,
                     n_tracks: int = SUBMISSION_TRACKS, max_errors: int = 1000) -> list[str]:
    """:func:`verify_submission` on a parsed file: ``errors`` (its format errors) plus the checker's."""
    _require_playlists(challenge)
    errors = list(errors)
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
