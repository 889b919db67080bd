"""Score models and submission files on a split: seeds in, batched recommendations, metrics out.

Ground truth is kept as URIs until scoring, then mapped into the scored id space: held-out tracks the
model's store does not know get fresh ids beyond its vocabulary, so they still count in |G| but can
never match. Seeds the model's store does not know are dropped before ``recommend``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segue.data.challenge_set import ChallengeSet, load_answers, load_challenge
from segue.data.split import SPLIT_FILE, TRAIN_DIR, Split, load_split
from segue.data.store import MANIFEST_FILE, Store, csr_keep, csr_slice
from segue.errors import InputError
from segue.evaluate.metrics import Scores, compute_metrics, first_occurrence, paired_difference
from segue.evaluate.submission import SUBMISSION_TRACKS, check_submission, read_submission, write_submission
from segue.progress import progress_task

log = logging.getLogger(__name__)

BATCH_PLAYLISTS = 500


def check_training_store(model, model_dir: str | os.PathLike, train_path: Path, force: bool = False) -> str | None:
    """Refuse a model that was not trained on the split's training store: any other store (the full one,
    say) holds the split's answers, so its figures would be inflated. With ``force``, log a warning and
    return it instead. Compares the model's recorded store fingerprint with the training store's."""
    if not (train_path / MANIFEST_FILE).is_file():
        return None
    expected = Store.open(train_path).fingerprint
    recorded = model.store_info or {}
    if recorded.get("fingerprint") == expected:
        return None
    message = (f"model {model_dir} was trained on the store {recorded.get('path', '?')}, not on the split's "
               f"training store {train_path} (another track vocabulary): that store may hold the split's "
               "answers, so the figures would be inflated")
    if not force:
        raise InputError(f"{message}. Train the model on {train_path} (`segue train MODEL --store {train_path}`), "
                         "or pass --force to go on anyway.")
    log.warning("%s (--force given)", message)
    return f"{message}."


def seeds_for_store(challenge: ChallengeSet, store: Store) -> tuple[np.ndarray, np.ndarray, int]:
    """Challenge seeds as CSR over ``store`` ids, unknown seeds dropped: (indptr, indices, n_dropped)."""
    ids = store.track_ids(challenge.seed_uris)
    indptr, known = csr_keep(challenge.seed_indptr, ids, ids >= 0)
    return indptr, known.astype(np.int32), len(ids) - len(known)


def ground_truth(challenge: ChallengeSet, answers: dict[int, list[str]], store: Store | None = None,
                 vocabulary: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Answers of the challenge playlists as CSR over ``store`` ids (or ``vocabulary``).

    URIs unknown to the id space get ids from ``n_known`` upwards (one per distinct URI), so they count
    in |G| without ever matching. Returns (indptr, indices int64, number of unknown answer entries).
    """
    missing = [pid for pid in challenge.pids.tolist() if pid not in answers]
    if missing:
        raise InputError(f"the answers lack {len(missing)} challenge pid(s), e.g. {missing[:5]}; "
                         "use the answers.json written with this challenge set.")
    lists = [answers[pid] for pid in challenge.pids.tolist()]
    lengths = np.fromiter((len(a) for a in lists), dtype=np.int64, count=len(lists))
    flat = [u for a in lists for u in a]
    if store is not None:
        ids = store.track_ids(flat).astype(np.int64)
        n_known = store.n_tracks
    else:
        vocabulary = vocabulary or {}
        ids = np.fromiter((vocabulary.get(u, -1) for u in flat), dtype=np.int64, count=len(flat))
        n_known = len(vocabulary)
    unknown = ids < 0
    if unknown.any():
        encoded = pc.dictionary_encode(pa.array([u for u, bad in zip(flat, unknown) if bad]))
        ids[unknown] = n_known + encoded.indices.to_numpy().astype(np.int64)
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, ids, int(unknown.sum())


def recommend_challenge(model, store: Store, challenge: ChallengeSet, k: int = SUBMISSION_TRACKS,
                        progress: bool = True, description: str = "recommend",
                        seeds: tuple[np.ndarray, np.ndarray, int] | None = None) -> tuple[np.ndarray, dict]:
    """(n, k) int32 recommendations in ``store`` ids for every challenge playlist, in batches.

    ``seeds``: :func:`seeds_for_store`'s result, when the caller has it already."""
    indptr, indices, dropped = seeds if seeds is not None else seeds_for_store(challenge, store)
    first_seeds = challenge.first_seeds()  # rerank tells random-k playlists (categories 8, 10) from first-k ones
    n = len(challenge)
    recs = np.full((n, k), -1, dtype=np.int32)
    start_time = time.perf_counter()
    with progress_task(description, n, progress) as advance:
        for start in range(0, n, BATCH_PLAYLISTS):
            stop = min(n, start + BATCH_PLAYLISTS)
            sub_ptr, sub_idx = csr_slice(indptr, indices, start, stop)
            ids, _ = model.recommend((sub_ptr, sub_idx), k=k, titles=challenge.names[start:stop],
                                     first_seeds=first_seeds[start:stop])
            recs[start:stop] = ids
            advance(stop - start)
    seconds = time.perf_counter() - start_time
    return recs, {"seeds_unknown_to_store": dropped, "recommend_seconds": round(seconds, 3),
                  "playlists_per_second": round(n / seconds, 1) if seconds > 0 else None}


def evaluate_model(model_dir: str | os.PathLike, split: Split, k: int = SUBMISSION_TRACKS,
                   store: str | os.PathLike | None = None, progress: bool = True, force: bool = False) -> Scores:
    from segue.models.base import open_model_and_store

    model, model_store = open_model_and_store(model_dir, store)
    leak = check_training_store(model, model_dir, split.train_path, force)
    challenge = split.challenge
    recs, info = recommend_challenge(model, model_store, challenge, k=k, progress=progress,
                                     description=f"evaluate {Path(model_dir).name}")
    gt_indptr, gt_indices, unknown = ground_truth(challenge, split.answers, model_store)
    values = compute_metrics(recs, gt_indptr, gt_indices, model_store.track_artist)
    info.update({"model": model.name, "model_dir": str(model_dir), "store": str(model_store.path),
                 "answers_unknown_to_store": unknown, "k": k, "warnings": [leak] if leak else []})
    return Scores(values=values, categories=challenge.categories, pids=challenge.pids, extra=info)


def _model_keys(model_dirs: Sequence[str | os.PathLike]) -> list[str]:
    names = [Path(d).name or str(d) for d in model_dirs]
    if len(set(names)) != len(names):
        names = [str(d) for d in model_dirs]
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


def evaluate_models(model_dirs: Sequence[str | os.PathLike], split_dir: str | os.PathLike | Split,
                    k: int = SUBMISSION_TRACKS, store: str | os.PathLike | None = None,
                    progress: bool = True, ci: bool = True, force: bool = False) -> dict:
    """Evaluate every model directory on a split: ``{model key: summary}`` (see :func:`Scores.summary`).

    The model key is the directory's name (its full path when two names collide). Each summary has
    ``overall`` (metric means and ``n``), ``ci95`` (bootstrap bounds of the overall means),
    ``per_category`` and ``info`` (model name, store, timing, unknown seeds/answers, warnings); every model
    after the first also has ``paired``, its difference from the first on the same playlists
    (:func:`~segue.evaluate.metrics.paired_difference`, with ``against``: the first model's key).
    A model not trained on the split's training store is refused unless ``force`` (then warned about).
    """
    if not model_dirs:
        raise InputError("no model directories given; pass at least one (train one with `segue train`).")
    split = split_dir if isinstance(split_dir, Split) else load_split(split_dir)
    results = {}
    first: tuple[str, Scores] | None = None
    for key, model_dir in zip(_model_keys(model_dirs), model_dirs):
        scores = evaluate_model(model_dir, split, k=k, store=store, progress=progress, force=force)
        summary = scores.summary(ci=ci)
        summary["info"] = scores.extra
        if first is None:
            first = key, scores
        elif ci:
            summary["paired"] = {"against": first[0], **paired_difference(first[1].values, scores.values)}
        results[key] = summary
        log.info("%s: R-precision %.4f", key, summary["overall"]["r_precision"] or float("nan"))
    return results


def score_submission(submission: str | os.PathLike, answers: str | os.PathLike | dict,
                     challenge: str | os.PathLike | ChallengeSet | None = None,
                     store: str | os.PathLike | Store | None = None, k: int = SUBMISSION_TRACKS,
                     ci: bool = True) -> dict:
    """Metrics of a submission file against answers.

    Playlists scored are the challenge set's (or, without it, the answers' pids); a playlist missing
    from the submission scores as an empty list. Categories come from the challenge set (see
    :mod:`segue.data.challenge_set`); without one every playlist is category 0. The artist credit needs a
    store (``store``) to know track artists; without it ``r_precision_artist`` is null.

    The file is checked as ``segue verify`` does (against the answers' pids when no challenge set is
    given): a file none of whose lines is a scored playlist is refused; other failures are scored but
    listed under ``info["fails_verify"]`` (the first few) and ``info["verify_failures"]`` (how many).
    """
    answers = answers if isinstance(answers, dict) else load_answers(answers)
    if not answers:
        raise InputError("the answers are empty; use the answers.json `segue split` wrote.")
    if challenge is None:
        challenge = ChallengeSet.from_pids(sorted(answers))
    elif not isinstance(challenge, ChallengeSet):
        challenge = load_challenge(challenge)
    parsed, format_errors = read_submission(submission)
    failures = check_submission(parsed, format_errors, challenge)
    if not set(parsed.pids) & set(challenge.pids.tolist()):
        shown = "; ".join(failures[:3]) or "no line names a playlist of the challenge set"
        raise InputError(f"{submission} fails `segue verify` and has no line for any scored playlist, so there is "
                         f"nothing to score: {shown}. Check it with `segue verify {submission} --challenge ...`.")
    if store is not None and not isinstance(store, Store):
        store = Store.open(store)

    row_of = challenge.row_of_pid()
    n = len(challenge)
    recs_uri: list[list[str]] = [[] for _ in range(n)]
    for pid, uris in zip(parsed.pids, parsed.rows):
        row = row_of.get(pid)
        if row is not None and not recs_uri[row]:
            recs_uri[row] = uris[:k]
    # One id space over every URI in the submission and the answers: the store's ids when given.
    flat = [u for row in recs_uri for u in row]
    if store is not None:
        rec_ids = store.track_ids(flat).astype(np.int64)
        gt_indptr, gt_indices, _ = ground_truth(challenge, answers, store)
        # Submission URIs unknown to the store: give them ids that match answers by URI.
        unknown = rec_ids < 0
        if unknown.any():
            extra = {}
            answer_flat = [u for pid in challenge.pids.tolist() for u in answers[pid]]
            for u, i in zip(answer_flat, gt_indices.tolist()):
                if i >= store.n_tracks:
                    extra[u] = i
            base = int(gt_indices.max(initial=store.n_tracks - 1)) + 1
            unknown_uris = [u for u, bad in zip(flat, unknown) if bad]
            rec_ids[unknown] = [extra.get(u, base + j) for j, u in enumerate(unknown_uris)]
        track_artist = store.track_artist
    else:
        answer_flat = [u for pid in challenge.pids.tolist() for u in answers.get(pid, [])]
        encoded = pc.dictionary_encode(pa.array(flat + answer_flat, type=pa.string()))
        vocab_uris = encoded.dictionary.to_pylist()
        vocabulary = {u: i for i, u in enumerate(vocab_uris)}
        rec_ids = encoded.indices.to_numpy()[: len(flat)].astype(np.int64)
        gt_indptr, gt_indices, _ = ground_truth(challenge, answers, vocabulary=vocabulary)
        track_artist = None
    recs = np.full((n, k), -1, dtype=np.int64)
    lengths = np.fromiter((len(r) for r in recs_uri), dtype=np.int64, count=n)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    recs[rows, cols] = rec_ids
    values = compute_metrics(recs, gt_indptr, gt_indices, track_artist)
    summary = Scores(values=values, categories=challenge.categories, pids=challenge.pids).summary(ci=ci)
    summary["info"] = {
        "submission": str(submission),
        "playlists": n,
        "missing_from_submission": int((lengths == 0).sum()),
        "artist_credit": store is not None,
        "verify_failures": len(failures),
        "fails_verify": failures[:5],
    }
    return summary


def fill_to_k(recs: np.ndarray, seed_indptr: np.ndarray, seed_indices: np.ndarray, popularity_order: np.ndarray,
              k: int = SUBMISSION_TRACKS) -> np.ndarray:
    """Make every row ``k`` distinct non-seed ids: drop -1 and repeats, then pad from ``popularity_order``.

    Only rows that need it are touched (a Python loop over short rows, not over all playlists).
    """
    n = len(recs)
    valid = first_occurrence(recs)
    rows = np.repeat(np.arange(n), np.diff(seed_indptr))
    if len(seed_indices):
        width = int(max(recs.max(initial=0), seed_indices.max(initial=0), popularity_order.max(initial=0))) + 1
        seed_keys = np.unique(rows.astype(np.int64) * width + seed_indices)
        keys = np.arange(n, dtype=np.int64)[:, None] * width + recs
        pos = np.clip(np.searchsorted(seed_keys, keys), 0, len(seed_keys) - 1)
        valid &= seed_keys[pos] != keys
    out = np.empty((n, k), dtype=np.int64)
    complete = valid[:, :k].all(axis=1) if recs.shape[1] >= k else np.zeros(n, dtype=bool)
    if complete.any():
        out[complete] = recs[complete, :k]
    for row in np.flatnonzero(~complete).tolist():
        chosen = recs[row][valid[row]][:k]
        if len(chosen) < k:
            banned = np.concatenate([chosen, seed_indices[seed_indptr[row] : seed_indptr[row + 1]]])
            pad = popularity_order[~np.isin(popularity_order, banned)][: k - len(chosen)]
            chosen = np.concatenate([chosen, pad])
        if len(chosen) < k:
            raise InputError(f"the store knows only {len(popularity_order)} tracks, too few to fill {k} distinct "
                             f"non-seed recommendations per playlist; submissions need {k}.")
        out[row] = chosen
    return out


def make_submission(model_dir: str | os.PathLike, challenge: str | os.PathLike | ChallengeSet,
                    out: str | os.PathLike, team: str = "segue", email: str = "segue@example.com",
                    track: str | None = "main", store: str | os.PathLike | None = None,
                    progress: bool = True, k: int = SUBMISSION_TRACKS, force: bool = False) -> dict:
    """Recommend for a challenge set and write an official-format submission (gzip for ``.gz``) atomically.

    Each line holds ``k`` distinct tracks, none of them a seed; when the model returns fewer, the rest
    are the store's most popular remaining tracks. Returns a summary of what was written.
    When the challenge set is a split's (a ``split.json`` beside it), the model must have been trained on
    that split's training store (see :func:`check_training_store`; ``force`` turns the refusal into a warning).
    """
    from segue.models.base import open_model_and_store

    model, model_store = open_model_and_store(model_dir, store)
    challenge = challenge if isinstance(challenge, ChallengeSet) else load_challenge(challenge)
    leak = None
    if challenge.path is not None and (challenge.path.parent / SPLIT_FILE).is_file():
        leak = check_training_store(model, model_dir, challenge.path.parent / TRAIN_DIR, force)
    seeds = seeds_for_store(challenge, model_store)
    recs, info = recommend_challenge(model, model_store, challenge, k=k, progress=progress, description="submit",
                                     seeds=seeds)
    seed_indptr, seed_indices, _ = seeds
    padded_rows = int((recs < 0).any(axis=1).sum())
    popularity_order = np.argsort(-model_store.track_count, kind="stable").astype(np.int64)
    full = fill_to_k(recs.astype(np.int64), seed_indptr, seed_indices.astype(np.int64), popularity_order, k)
    uris = model_store.tracks.column("track_uri").combine_chunks()
    flat = uris.take(pa.array(full.reshape(-1))).to_pylist()
    rows = [flat[i * k : (i + 1) * k] for i in range(len(challenge))]
    write_submission(out, challenge.pids.tolist(), rows, team=team, email=email, track=track)
    info.update({"out": str(out), "playlists": len(challenge), "padded_playlists": padded_rows,
                 "model": model.name, "store": str(model_store.path), "warnings": [leak] if leak else []})
    return info
