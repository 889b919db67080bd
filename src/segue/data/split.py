"""Hold out playlists the way the RecSys Challenge 2018 challenge set was built.

``make_split(store, out)`` writes::

    OUT/train/               a store of the remaining playlists (same format, own vocabulary)
    OUT/challenge_set.json   the official format: date, version, playlists (pid, name in titled
                             categories, num_holdouts, num_samples, num_tracks, tracks = seed tracks)
    OUT/answers.json         {pid as string: [held-out track URIs in playlist order]}
    OUT/split.json           seed, rules, per-category counts, dropped counts, category of each pid

Rules (also recorded in ``split.json``):

* Categories (seeds / title): 1 title only; 2 title + first 1; 3 title + first 5; 4 first 5, no title;
  5 title + first 10; 6 first 10, no title; 7 title + first 25; 8 title + 25 random; 9 title + first 100;
  10 title + 100 random. Random seeds are a uniform sample of positions, listed in playlist order with
  their original ``pos``.
* Eligibility: a playlist qualifies for a category when it has at least ``num_samples + min_holdouts``
  tracks (``min_holdouts`` = 5 by default, so categories 9/10 need >= 105 tracks), and, for titled
  categories, a non-blank name. Every track not used as a seed is held out.
* Selection: one random permutation of all playlists (``seed``); categories are filled strictest first
  (9, 10, 7, 8, 5, 6, 3, 4, 2, 1) with the first eligible, not yet chosen playlists, so no playlist is in
  two categories and long playlists are not used up by the lax categories. Too little data is an error
  that names the largest ``per_category`` the data allows.
* Answers: held-out tracks are distinct (a repeated track is listed once, at its first position);
  held-out tracks that are also a seed of the same playlist, or that never occur in the train store, are
  dropped (counted in ``split.json``). A test playlist left without answers is dropped from the test set
  and returned to train (counted per category), so a category can end up slightly below ``per_category``.
* Seed tracks not in train stay in the challenge set (they are real seeds); they are counted, and the
  evaluator ignores them since no model trained on the split can know them.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segue import __version__
from segue.data.challenge_set import (
    CATEGORIES,
    Category,
    ChallengeSet,
    load_answers,
    load_challenge,
    write_challenge_json,
)
from segue.data.store import (
    MANIFEST_FILE,
    PLAYLISTS_FILE,
    PLAYLISTS_SCHEMA,
    TRACKS_FILE,
    Store,
    store_manifest,
)
from segue.errors import InputError, StoreError
from segue.io import SPLIT_OUTPUT, atomic_dir, claim_output, read_json, write_json

log = logging.getLogger(__name__)

SPLIT_FORMAT = SPLIT_OUTPUT.value  # split.json's "format": the marker `segue split --out` replaces
SPLIT_VERSION = 1
DEFAULT_PER_CATEGORY = 1000
DEFAULT_MIN_HOLDOUTS = 5
TRAIN_DIR = "train"
CHALLENGE_FILE = "challenge_set.json"
ANSWERS_FILE = "answers.json"
SPLIT_FILE = "split.json"


# Strictest first: more seeds first, titled before untitled for equal seed counts.
FILL_ORDER = tuple(sorted(CATEGORIES, key=lambda c: (-c.num_samples, not c.titled, c.number)))


def rules_text(min_holdouts: int) -> list[str]:
    return [
        f"eligible: len(tracks) >= num_samples + {min_holdouts}; titled categories also need a non-blank name",
        "selection: one seeded permutation; categories filled strictest first (9,10,7,8,5,6,3,4,2,1), "
        "without replacement",
        "seeds: the first num_samples tracks, or a uniform random sample of positions for categories 8 and 10",
        "answers: distinct held-out tracks in playlist order; tracks equal to a seed or absent from train dropped",
        "a test playlist with no answers left is dropped from the test set and returned to train",
        "seed tracks absent from train are kept in the challenge set and counted",
    ]


@dataclass
class SplitInfo:
    """What ``make_split`` did: where, with which seed, and how many playlists each category kept."""

    path: Path
    seed: int
    per_category: int
    counts: dict[int, int]
    dropped: dict[str, int]
    seed_tracks_not_in_train: int
    train_playlists: int
    details: dict = field(default_factory=dict, repr=False)

    @property
    def n_test(self) -> int:
        return sum(self.counts.values())


@dataclass
class Split:
    """A split on disk: paths plus the parsed challenge set, answers and split.json."""

    path: Path
    challenge: ChallengeSet
    answers: dict[int, list[str]]
    info: dict

    @property
    def train_path(self) -> Path:
        return self.path / TRAIN_DIR

    @property
    def challenge_path(self) -> Path:
        return self.path / CHALLENGE_FILE

    @property
    def answers_path(self) -> Path:
        return self.path / ANSWERS_FILE

    def train_store(self) -> Store:
        return Store.open(self.train_path)


def titled_rows(store: Store) -> np.ndarray:
    """(n_playlists,) bool: the playlist has a non-blank name."""
    names = store.playlist_meta.column("name")
    stripped = pc.utf8_trim_whitespace(names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names)
    has = pc.fill_null(pc.greater(pc.utf8_length(stripped), 0), False)
    return np.asarray(has.to_numpy(zero_copy_only=False), dtype=bool)


def _allocate(perm: np.ndarray, lengths: np.ndarray, titled: np.ndarray, per_category: int,
              min_holdouts: int) -> tuple[dict[int, np.ndarray], dict[int, int]] | None:
    """Rows per category (in ``perm`` order), or None when some category runs short."""
    used = np.zeros(len(lengths), dtype=bool)
    chosen: dict[int, np.ndarray] = {}
    eligible_counts: dict[int, int] = {}
    len_perm, titled_perm = lengths[perm], titled[perm]
    for cat in FILL_ORDER:
        ok = len_perm >= cat.num_samples + min_holdouts
        if cat.titled:
            ok &= titled_perm
        eligible_counts[cat.number] = int(ok.sum())
        ok &= ~used[perm]
        rows = perm[ok][:per_category]
        if len(rows) < per_category:
            return None
        used[rows] = True
        chosen[cat.number] = rows
    return chosen, eligible_counts


def _max_per_category(perm, lengths, titled, min_holdouts) -> int:
    lo, hi = 0, len(lengths) // len(CATEGORIES)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _allocate(perm, lengths, titled, mid, min_holdouts) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def max_per_category(store: Store, seed: int = 0, min_holdouts: int = DEFAULT_MIN_HOLDOUTS) -> int:
    """The largest ``per_category`` :func:`make_split` can fill on ``store`` with ``seed`` (0: none)."""
    perm = np.random.default_rng(seed).permutation(store.n_playlists)
    return _max_per_category(perm, np.diff(store.indptr), titled_rows(store), min_holdouts)


def _reindex(ids: np.ndarray) -> np.ndarray:
    """Dense re-numbering of non-negative ids keeping their order; -1 stays -1."""
    out = np.full(len(ids), -1, dtype=np.int32)
    known = ids >= 0
    if known.any():
        _, inverse = np.unique(ids[known], return_inverse=True)
        out[known] = inverse.astype(np.int32)
    return out


def write_train_store(store: Store, train_rows: np.ndarray, out: Path, extra: dict,
                      keep_vocabulary: bool = False) -> dict:
    """Write the playlists at ``train_rows`` as a new store at ``out`` (a fresh directory), vectorised.

    The track/artist/album vocabularies are cut down to what occurs in these playlists and renumbered
    keeping their original order; counts are recomputed. ``keep_vocabulary`` keeps every track (and so
    the ids and fingerprint of ``store``), tracks absent from these playlists with count 0.
    """
    lengths = np.diff(store.indptr)
    keep_playlist = np.zeros(store.n_playlists, dtype=bool)
    keep_playlist[train_rows] = True
    old_entries = store.indices[np.repeat(keep_playlist, lengths)]
    counts = np.bincount(old_entries, minlength=store.n_tracks).astype(np.int64)
    used = np.ones(store.n_tracks, dtype=bool) if keep_vocabulary else counts > 0
    new_of_old = (np.cumsum(used) - 1).astype(np.int32)
    entries = new_of_old[old_entries]
    del old_entries  # one entries-sized array less while the tables are built (~0.27 GB at the MPD's size)
    offsets = np.zeros(len(train_rows) + 1, dtype=np.int64)
    np.cumsum(lengths[train_rows], out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise StoreError("the train split has more than 2^31 entries, beyond the store format's int32 offsets.")

    tracks = store.tracks.filter(pa.array(used))
    n_tracks = tracks.num_rows
    artists = _reindex(tracks.column("artist_id").to_numpy().astype(np.int64))
    albums = _reindex(tracks.column("album_id").to_numpy().astype(np.int64))
    replace = {
        "track_id": pa.array(np.arange(n_tracks, dtype=np.int32)),
        "artist_id": pa.array(artists),
        "album_id": pa.array(albums),
        "count": pa.array(counts[used]),
    }
    for name, column in replace.items():
        tracks = tracks.set_column(tracks.schema.get_field_index(name), name, column)
    pq.write_table(tracks, out / TRACKS_FILE, compression="zstd")

    meta = pq.read_table(store.path / PLAYLISTS_FILE, columns=[f.name for f in PLAYLISTS_SCHEMA if f.name != "tracks"])
    meta = meta.take(pa.array(train_rows.astype(np.int64)))
    track_lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(entries, pa.int32()))
    playlists = pa.Table.from_arrays(
        [meta.column(f.name).combine_chunks().cast(f.type) for f in PLAYLISTS_SCHEMA if f.name != "tracks"]
        + [track_lists],
        schema=PLAYLISTS_SCHEMA,
    )
    pq.write_table(playlists, out / PLAYLISTS_FILE, compression="zstd", row_group_size=100_000)

    n_artists = int(artists.max(initial=-1)) + 1
    n_albums = int(albums.max(initial=-1)) + 1
    counts = {"playlists": int(len(train_rows)), "entries": int(len(entries)), "tracks": int(n_tracks),
              "artists": n_artists, "albums": n_albums}
    manifest = store_manifest(counts, tracks, out)
    manifest["sources"] = [{"path": str(store.path), "fingerprint": store.fingerprint, "kind": "store"}]
    manifest.update(extra)
    write_json(out / MANIFEST_FILE, manifest)
    return manifest


def _seed_positions(n: int, cat: Category, rng: np.random.Generator) -> np.ndarray:
    if cat.random:
        return np.sort(rng.choice(n, size=cat.num_samples, replace=False))
    return np.arange(cat.num_samples)


def _track_dict(row: dict, pos: int) -> dict:
    return {
        "pos": pos,
        "artist_name": row.get("artist_name"),
        "track_uri": row["track_uri"],
        "artist_uri": row.get("artist_uri"),
        "track_name": row.get("track_name"),
        "album_uri": row.get("album_uri"),
        "duration_ms": row.get("duration_ms"),
        "album_name": row.get("album_name"),
    }


def make_split(store: Store | str | os.PathLike, out: str | os.PathLike, per_category: int = DEFAULT_PER_CATEGORY,
               seed: int = 0, min_holdouts: int = DEFAULT_MIN_HOLDOUTS, force: bool = False) -> SplitInfo:
    """Hold out ``per_category`` playlists in each of the 10 challenge categories; see the module docstring.

    ``out`` may replace an older split only (``force``: anything but the input store)."""
    if not isinstance(store, Store):
        store = Store.open(store)
    with claim_output(out, SPLIT_OUTPUT, inputs=[store.path], force=force):
        return _make_split(store, Path(out), per_category, seed, min_holdouts)


def _make_split(store: Store, out: Path, per_category: int, seed: int, min_holdouts: int) -> SplitInfo:
    if not isinstance(per_category, (int, np.integer)) or per_category < 1:
        raise InputError(f"--per-category must be a positive integer, got {per_category!r}.")
    if min_holdouts < 1:
        raise InputError(f"min_holdouts must be at least 1, got {min_holdouts}.")
    lengths = np.diff(store.indptr)
    titled = titled_rows(store)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(store.n_playlists)
    allocation = _allocate(perm, lengths, titled, per_category, min_holdouts)
    if allocation is None:
        allowed = _max_per_category(perm, lengths, titled, min_holdouts)
        raise InputError(
            f"{store.path} has too few eligible playlists for {per_category} per category "
            f"({len(CATEGORIES)} categories; category 9/10 need >= {100 + min_holdouts} tracks and a title). "
            + (f"This store allows at most --per-category {allowed}." if allowed else
               "This store cannot fill even one playlist per category.")
        )
    chosen, eligible_counts = allocation
    test_rows = np.concatenate([chosen[c.number] for c in CATEGORIES])
    train_mask = np.ones(store.n_playlists, dtype=bool)
    train_mask[test_rows] = False
    in_train = np.bincount(store.indices[np.repeat(train_mask, lengths)], minlength=store.n_tracks) > 0

    indptr, indices, pids, names = store.indptr, store.indices, store.pids, store.names
    dropped = {"holdouts_not_in_train": 0, "holdouts_repeating_a_seed": 0, "holdouts_repeated": 0,
               "playlists_without_answers": 0}
    seeds_not_in_train = 0
    per_cat_kept: dict[int, int] = {}
    per_cat_dropped: dict[int, int] = {}
    entries: list[tuple[int, int, Category, np.ndarray, np.ndarray]] = []  # row, pid, cat, seed pos, answers
    answers: dict[str, list[int]] = {}
    returned: list[int] = []
    for cat in CATEGORIES:
        cat_rng = np.random.default_rng([seed, cat.number])
        kept = 0
        for row in chosen[cat.number].tolist():
            tracks = indices[indptr[row] : indptr[row + 1]]
            seed_pos = _seed_positions(len(tracks), cat, cat_rng)
            is_seed = np.zeros(len(tracks), dtype=bool)
            is_seed[seed_pos] = True
            held = tracks[~is_seed]
            _, first = np.unique(held, return_index=True)
            distinct = held[np.sort(first)]
            dropped["holdouts_repeated"] += len(held) - len(distinct)
            repeats_seed = np.isin(distinct, tracks[seed_pos])
            dropped["holdouts_repeating_a_seed"] += int(repeats_seed.sum())
            known = in_train[distinct]
            dropped["holdouts_not_in_train"] += int((~known & ~repeats_seed).sum())
            final = distinct[known & ~repeats_seed]
            if len(final) == 0:
                dropped["playlists_without_answers"] += 1
                per_cat_dropped[cat.number] = per_cat_dropped.get(cat.number, 0) + 1
                returned.append(row)
                continue
            seeds_not_in_train += int((~in_train[tracks[seed_pos]]).sum())
            kept += 1
            entries.append((row, int(pids[row]), cat, seed_pos, final))
        per_cat_kept[cat.number] = kept
    if returned:
        train_mask[returned] = True
        log.info("returned %d test playlists without answers to train", len(returned))

    # Track metadata of every seed, fetched once.
    seed_ids = np.concatenate([indices[indptr[r] : indptr[r + 1]][p] for r, _, _, p, _ in entries] or
                              [np.zeros(0, np.int32)])
    seed_rows = store.tracks.take(pa.array(seed_ids.astype(np.int64))).to_pylist() if len(seed_ids) else []
    uris = store.tracks.column("track_uri")
    answer_ids = np.concatenate([a for *_, a in entries] or [np.zeros(0, np.int32)])
    answer_uris = uris.take(pa.array(answer_ids.astype(np.int64))).to_pylist() if len(answer_ids) else []
    playlists_json = []
    categories_by_pid = {}
    s_at = a_at = 0
    for row, pid, cat, seed_pos, final in entries:
        n = int(indptr[row + 1] - indptr[row])
        seed_tracks = [_track_dict(seed_rows[s_at + j], int(p)) for j, p in enumerate(seed_pos.tolist())]
        s_at += len(seed_pos)
        item = {"pid": pid}
        if cat.titled:
            item["name"] = names[row]
        item.update({"num_holdouts": n - len(seed_pos), "num_samples": len(seed_pos), "num_tracks": n,
                     "tracks": seed_tracks})
        playlists_json.append(item)
        answers[str(pid)] = answer_uris[a_at : a_at + len(final)]
        a_at += len(final)
        categories_by_pid[str(pid)] = cat.number

    train_rows = np.flatnonzero(train_mask)
    details = {
        "format": SPLIT_FORMAT,
        "version": SPLIT_VERSION,
        "segue_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"path": str(store.path), "fingerprint": store.fingerprint, "playlists": store.n_playlists},
        "seed": int(seed),
        "per_category": int(per_category),
        "min_holdouts": int(min_holdouts),
        "rules": rules_text(min_holdouts),
        "categories": {
            str(c.number): {
                "description": c.description,
                "num_samples": c.num_samples,
                "titled": c.titled,
                "random_seeds": c.random,
                "min_tracks": c.num_samples + min_holdouts,
                "eligible": eligible_counts[c.number],
                "kept": per_cat_kept[c.number],
                "dropped_without_answers": per_cat_dropped.get(c.number, 0),
            }
            for c in CATEGORIES
        },
        "dropped": dropped,
        "seed_tracks_not_in_train": seeds_not_in_train,
        "test_playlists": len(entries),
        "train_playlists": int(len(train_rows)),
        "categories_by_pid": categories_by_pid,
    }
    with atomic_dir(out) as tmp:
        (tmp / TRAIN_DIR).mkdir()
        manifest_extra = {"split": {"role": "train", "seed": int(seed), "per_category": int(per_category),
                                    "test_playlists": len(entries), "source_fingerprint": store.fingerprint}}
        train_manifest = write_train_store(store, train_rows, tmp / TRAIN_DIR, manifest_extra)
        details["train"] = train_manifest["counts"]

        write_challenge_json(tmp / CHALLENGE_FILE, playlists_json)
        write_json(tmp / ANSWERS_FILE, answers)
        write_json(tmp / SPLIT_FILE, details)
    log.info("split %s: %d test playlists, %d train", out, len(entries), len(train_rows))
    return SplitInfo(path=out, seed=int(seed), per_category=int(per_category), counts=per_cat_kept,
                     dropped=dropped, seed_tracks_not_in_train=seeds_not_in_train,
                     train_playlists=int(len(train_rows)), details=details)


def load_split(path: str | os.PathLike) -> Split:
    """Open a split directory written by :func:`make_split` (or any dir with the challenge + answers files)."""

    path = Path(path)
    if not (path / CHALLENGE_FILE).is_file():
        raise InputError(f"{path} is not a split directory (no {CHALLENGE_FILE}); make one with `segue split`.")
    info = read_json(path / SPLIT_FILE) if (path / SPLIT_FILE).is_file() else {}
    challenge = load_challenge(path / CHALLENGE_FILE)
    answers = load_answers(path / ANSWERS_FILE)
    return Split(path=path, challenge=challenge, answers=answers, info=info)
