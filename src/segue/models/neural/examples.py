"""Training examples for the neural models, built as arrays (never a Python loop per pair or playlist).

Each round starts from :func:`round_sequences`: the training playlists as a CSR of song ids in which a
``shuffle`` share of the playlists is randomly reordered, so that models also learn from unordered seeds
(the challenge's random-seed categories). Then per model:

* meanvar, ``data=prefix`` (default): pairs of (seed songs = the first k songs of a sequence, one target
  song after them). k is uniform in 1..``max_seeds`` (random prefix lengths: robust to 1, 5, 10, 25, 100
  seeds); ``target=later`` draws any later song (every held-out song counts in the challenge),
  ``target=next`` the next one. A round draws ``pairs_per_playlist`` pairs per playlist (0: one per song,
  at most ``max_seeds``) and at least ``min_steps`` batches (more draws on a small store); the number of
  rounds is set by early stopping on held-out R-precision, so the budget follows the data: short rounds
  let a sparse store stop before it overfits the ALS start and let an unstarted model train longer.
* meanvar, ``data=seed``: the write-up's data, exactly: playlists with at least 30 songs, cut to their first
  30, never shuffled; songs 1-20 are the input and the k-th of ``training_sets`` (<= 10) training sets uses
  song 20+k as the target.
* sequential: one window of up to ``max_len`` consecutive songs per playlist per round (a random stretch of
  a long playlist), predicting its songs one position at a time after the title token.

:func:`holdout_queries` turns held-out playlists into challenge-like queries (1, 5, 10, 25 or 100 seeds,
a fifth of them random rather than the first songs) whose answers are the remaining songs; the training
loop stops on their R-precision over the full catalogue.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

SEED_LENGTH = 30     # the write-up cuts playlists to their first 30 songs ...
SEED_INPUTS = 20     # ... and feeds songs 1-20 to the model
HOLDOUT_SEEDS = np.array([1, 5, 10, 25, 100])  # the challenge's seed counts
HOLDOUT_RANDOM_SHARE = 0.2                     # two of its ten categories take random seeds


@dataclasses.dataclass
class Sequences:
    """One round's training playlists: CSR ``indptr``/``indices`` and the store row of each sequence."""

    indptr: np.ndarray   # (s + 1,) int64
    indices: np.ndarray  # (nnz,) int32 song ids
    rows: np.ndarray     # (s,) int64 store rows

    def __len__(self) -> int:
        return len(self.rows)


def csr_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR of rows ``rows`` (any order, repeats allowed) of a CSR matrix, vectorised."""
    lengths = (indptr[rows + 1] - indptr[rows]).astype(np.int64)
    out_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    positions = np.repeat(indptr[rows] - out_ptr[:-1], lengths) + np.arange(out_ptr[-1], dtype=np.int64)
    return out_ptr, indices[positions]


def round_sequences(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, shuffle: float,
                    rng: np.random.Generator) -> Sequences:
    """Playlists ``rows`` with a ``shuffle`` share of them in random order."""
    seq_ptr, tokens = csr_rows(indptr, indices, rows)
    if shuffle > 0 and len(tokens):
        lengths = np.diff(seq_ptr)
        owner = np.repeat(np.arange(len(rows)), lengths)
        mixed = rng.random(len(rows)) < shuffle
        key = np.where(mixed[owner], rng.random(len(tokens)), np.arange(len(tokens), dtype=np.float64))
        tokens = tokens[np.lexsort((key, owner))]
    return Sequences(seq_ptr, tokens, np.asarray(rows, dtype=np.int64))


class _Columns:
    """Equal-length array columns (a dataclass): len, take rows, concatenate."""

    def __len__(self) -> int:
        return len(getattr(self, dataclasses.fields(self)[0].name))

    def take(self, sel: np.ndarray):
        return type(self)(*(getattr(self, f.name)[sel] for f in dataclasses.fields(self)))

    @classmethod
    def concat(cls, parts: list):
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)))


# ---- meanvar: (seeds, target) pairs ---------------------------------------------------------------------
@dataclasses.dataclass
class Pairs(_Columns):
    """Training pairs as arrays: seeds are ``indices[start : start + length]``; ``target`` one song each;
    ``row`` the sequence each pair comes from (for its title)."""

    start: np.ndarray    # (p,) int64 offset into the sequences' indices
    length: np.ndarray   # (p,) int64 number of seed songs (>= 1)
    target: np.ndarray   # (p,) int64 target song id
    row: np.ndarray      # (p,) int64 sequence index


def seed_pairs(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, training_sets: int = 10) -> Pairs:
    """The write-up's ten training sets: 20 seed songs, target song 20+k (k = 1..training_sets)."""
    lengths = indptr[rows + 1] - indptr[rows]
    keep = rows[lengths >= SEED_LENGTH]
    start = np.repeat(indptr[keep], training_sets)
    offset = np.tile(np.arange(SEED_INPUTS, SEED_INPUTS + training_sets, dtype=np.int64), len(keep))
    return Pairs(start, np.full(len(start), SEED_INPUTS, np.int64), indices[start + offset].astype(np.int64),
                 np.repeat(keep, training_sets).astype(np.int64))


def prefix_pairs(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, config,
                 rng: np.random.Generator) -> Pairs:
    """(prefix of 1..max_seeds songs, a following song) pairs from playlists of >= 2 songs:
    ``pairs_per_playlist`` each, or with 0 one per song after the first (at most ``max_seeds``)."""
    lengths = indptr[rows + 1] - indptr[rows]
    keep = lengths >= 2
    rows, lengths = rows[keep], lengths[keep]
    per = config.pairs_per_playlist
    counts = np.full(len(rows), per, np.int64) if per > 0 else np.minimum(lengths - 1, config.max_seeds)
    starts = np.repeat(indptr[rows], counts)
    n = np.repeat(lengths, counts)
    top = np.minimum(n - 1, config.max_seeds)
    seeds = 1 + (rng.random(len(n)) * top).astype(np.int64)                 # 1..top
    if config.target == "next":
        pos = seeds
    else:
        pos = seeds + (rng.random(len(n)) * (n - seeds)).astype(np.int64)   # seeds..n-1
    return Pairs(starts, seeds, indices[starts + pos].astype(np.int64), np.repeat(rows, counts).astype(np.int64))


def meanvar_examples(seqs: Sequences, config, rng: np.random.Generator) -> Pairs:
    rows = np.arange(len(seqs), dtype=np.int64)
    if config.data == "seed":
        return seed_pairs(seqs.indptr, seqs.indices, rows, config.training_sets)
    return prefix_pairs(seqs.indptr, seqs.indices, rows, config, rng)


def collate_pairs(seqs: Sequences, pairs: Pairs, titles: tuple[np.ndarray, np.ndarray], device) -> dict:
    """A batch of pairs -> CSR seed tensors (tokens (T,), segments (T,), counts (b,)), targets (b,) and the
    playlists' title features (``title_offsets`` (b + 1,), ``title_ids``)."""
    counts = pairs.length
    segments = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    positions = np.repeat(pairs.start - first, counts) + np.arange(int(counts.sum()), dtype=np.int64)
    batch = {"tokens": seqs.indices[positions], "segments": segments, "counts": counts, "targets": pairs.target}
    batch.update(title_batch(titles, seqs.rows[pairs.row]))
    batch.update(member_batch(seqs, pairs.row))
    return to_device(batch, device)


# ---- sequential: windows of consecutive songs -------------------------------------------------------------
@dataclasses.dataclass
class Windows(_Columns):
    """Windows of a round's sequences: songs ``indices[start : start + length]`` of sequence ``row``."""

    start: np.ndarray
    length: np.ndarray
    row: np.ndarray


def window_examples(seqs: Sequences, config, rng: np.random.Generator) -> Windows:
    """One window of up to ``max_len`` consecutive songs per sequence: the whole playlist when it is short
    enough, else a random stretch (all of a long playlist is seen over the rounds)."""
    lengths = np.diff(seqs.indptr)
    row = np.flatnonzero(lengths > 0).astype(np.int64)
    length = np.minimum(lengths[row], config.max_len)
    offset = (rng.random(len(row)) * (lengths[row] - length + 1)).astype(np.int64)
    return Windows(seqs.indptr[row] + offset, length, row)


def collate_windows(seqs: Sequences, windows: Windows, titles: tuple[np.ndarray, np.ndarray], device,
                    target: str = "next", rng: np.random.Generator | None = None) -> dict:
    """A batch of windows -> ``songs`` (b, L) padded with -1, ``lengths`` (b,), ``targets`` (b, L) (-1 past
    the end) and title features. Position t's input is the title (t = 0) or song t; its target is song t + 1
    (``target=next``) or a random song among songs t + 1.. of the window (``target=later``)."""
    b, width = len(windows), int(windows.length.max()) if len(windows) else 1
    offsets = np.arange(width, dtype=np.int64)
    valid = offsets[None, :] < windows.length[:, None]                            # (b, L)
    songs = np.where(valid, seqs.indices[np.minimum(windows.start[:, None] + offsets, len(seqs.indices) - 1)], -1)
    if target == "later":
        # position t (predicting among songs t .. length-1 of the window, 0-based)
        pick = offsets[None, :] + (rng.random((b, width)) * (windows.length[:, None] - offsets[None, :])).astype(np.int64)
        targets = np.where(valid, np.take_along_axis(songs, np.minimum(pick, width - 1), axis=1), -1)
    else:
        targets = songs
    batch = {"songs": songs.astype(np.int64), "lengths": windows.length.astype(np.int64),
             "targets": targets.astype(np.int64)}
    batch.update(title_batch(titles, seqs.rows[windows.row]))
    batch.update(member_batch(seqs, windows.row))
    return to_device(batch, device)


# ---- titles, queries, devices ------------------------------------------------------------------------------
def title_batch(titles: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> dict:
    """Title features of store rows ``rows`` from the store-wide CSR ``titles`` (offsets, ids)."""
    offsets, ids = csr_rows(titles[0], titles[1], rows)
    return {"title_offsets": offsets, "title_ids": ids}


def member_batch(seqs: Sequences, rows: np.ndarray) -> dict:
    """The whole playlist of each example (sequences ``rows``) as CSR (``member_ptr``, ``members``): the
    songs hard negatives must not be."""
    ptr, songs = csr_rows(seqs.indptr, seqs.indices, rows)
    return {"member_ptr": ptr, "members": songs}


def to_device(batch: dict, device) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.int64)).to(device, non_blocking=True)
            for k, v in batch.items()}


@dataclasses.dataclass
class Queries:
    """Held-out playlists as challenge-like queries: seeds (CSR), the songs to find (CSR), store rows."""

    seed_indptr: np.ndarray
    seed_indices: np.ndarray
    truth_indptr: np.ndarray
    truth_indices: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, sel: np.ndarray) -> "Queries":
        seed_ptr, seeds = csr_rows(self.seed_indptr, self.seed_indices, sel)
        truth_ptr, truth = csr_rows(self.truth_indptr, self.truth_indices, sel)
        return Queries(seed_ptr, seeds, truth_ptr, truth, self.rows[sel])


def holdout_queries(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> Queries:
    """Each held-out playlist of >= 2 songs: k seeds (a challenge seed count below its length), the first k
    songs or, for a fifth, k random ones; the truth is its other songs, each once and not a seed."""
    lengths = indptr[rows + 1] - indptr[rows]
    rows, lengths = rows[lengths >= 2], lengths[lengths >= 2]
    if len(rows) == 0:
        empty = np.zeros(1, np.int64)
        return Queries(empty, np.zeros(0, np.int32), empty, np.zeros(0, np.int32), rows)
    # k: a random challenge seed count among those below the playlist's length (1 always is)
    usable = (HOLDOUT_SEEDS[None, :] < lengths[:, None]).sum(1)
    k = HOLDOUT_SEEDS[(rng.random(len(rows)) * usable).astype(np.int64)]
    seqs = round_sequences(indptr, indices, rows, 0.0, rng)
    owner = np.repeat(np.arange(len(rows)), lengths)
    position = np.arange(len(seqs.indices)) - seqs.indptr[owner]
    randomised = rng.random(len(rows)) < HOLDOUT_RANDOM_SHARE
    key = np.where(randomised[owner], rng.random(len(owner)), position.astype(np.float64))
    order = np.lexsort((key, owner))
    tokens = seqs.indices[order]                                               # owner stays sorted
    is_seed = position < k[owner]                                              # the first k after the shuffle
    seed_ptr = np.concatenate([[0], np.cumsum(k)]).astype(np.int64)
    seeds = tokens[is_seed]
    # truth: the other songs, unique per playlist and never a seed
    cand_owner, cand = owner[~is_seed], tokens[~is_seed]
    seed_keys = np.repeat(np.arange(len(rows)), k).astype(np.int64) * (1 << 32) + seeds
    cand_keys = cand_owner.astype(np.int64) * (1 << 32) + cand
    keep = ~np.isin(cand_keys, seed_keys)
    cand_keys = np.unique(cand_keys[keep])
    truth_owner, truth = (cand_keys >> 32), (cand_keys & 0xFFFFFFFF)
    counts = np.bincount(truth_owner, minlength=len(rows))
    truth_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Queries(seed_ptr, seeds.astype(np.int32), truth_ptr, truth.astype(np.int32), rows)
