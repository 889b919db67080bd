"""Genre validation, the seed write-up's check automated: do recommendations stay in the playlist's genre?

The write-up counted country songs among the top-15 recommendations for a country playlist (and looked at
rap/hip-hop and Christmas playlists). Here, for each keyword group (``"rap|hip hop"`` = either phrase):

1. **Genre playlists**: playlists whose normalised title (``segue.data.mpd.normalize_title``) contains the
   keyword as whole word(s).
2. **Genre songs** (the rule, :class:`GenreRule`): counting each song once per playlist, over the store's
   playlists minus the evaluated ones, a song is a genre song when it occurs in at least ``min_support``
   playlists, at least ``min_genre`` of them genre playlists, and the share of its playlists that are genre
   playlists is at least ``min_lift`` times the base rate (the genre playlists' share of all song
   occurrences); the threshold is capped at ``(1 + base) / 2`` so common genres can still qualify.
3. **Evaluation**: up to ``max_playlists`` genre playlists with at least ``seeds + 5`` songs, preferring
   playlists held out of the models' training stores (by pid). Each model gets the first ``seeds`` (20)
   songs, no title (the title names the genre), and recommends ``k`` (15) songs, seeds excluded. Reported:
   the share of genre songs among those recommendations, next to the share among the playlists' own later
   songs (21+) and under ``popular`` (fitted on the fly on the first model's store when none is given).

Models trained on other stores (e.g. a split's train store) are compared through track URIs.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from segue.data.mpd import normalize_title
from segue.data.store import Store, csr_keep, map_track_ids
from segue.errors import InputError, ModelError
from segue.models.base import Recommender, load_model, read_model_config

log = logging.getLogger(__name__)

DEFAULT_KEYWORDS = ("country", "rap|hip hop", "christmas", "rock", "worship", "workout", "chill")


@dataclasses.dataclass(frozen=True)
class GenreRule:
    min_lift: float = 5.0       # genre share of the song's playlists / the base rate
    min_support: int = 5        # playlists holding the song
    min_genre: int = 3          # genre playlists holding the song
    seeds: int = 20             # seed songs given to the models (the write-up: songs 1-20)
    k: int = 15                 # recommendations counted (the write-up: top 15)
    max_playlists: int = 200    # evaluated playlists per genre
    examples: int = 3           # named example playlists per genre in the table
    seed: int = 0

    def describe(self) -> str:
        return (f"a genre song occurs in >= {self.min_support} playlists, >= {self.min_genre} of them genre "
                f"playlists, and its genre share is >= min({self.min_lift:g} x base rate, (1 + base rate) / 2); "
                f"models get the first {self.seeds} songs (no title) and recommend {self.k}, seeds excluded")


def parse_keywords(text: str | None) -> list[str]:
    if not text:
        return list(DEFAULT_KEYWORDS)
    groups = [g.strip() for g in text.split(",") if g.strip()]
    if not groups:
        raise InputError(f"--keywords {text!r} names no keyword; give e.g. 'country,rap|hip hop,christmas'.")
    return groups


def keyword_pattern(group: str) -> re.Pattern:
    words = [normalize_title(w) for w in group.split("|")]
    if not all(words):
        raise InputError(f"keyword group {group!r} has an empty alternative; separate alternatives with '|'.")
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b")


def title_mask(names: list[str | None], group: str) -> np.ndarray:
    pattern = keyword_pattern(group)
    return np.fromiter((bool(pattern.search(normalize_title(n))) for n in names), dtype=bool, count=len(names))


def genre_songs(binary: sp.csr_matrix, genre_rows: np.ndarray, use_rows: np.ndarray, rule: GenreRule) -> dict:
    """Label songs from playlist counts; ``genre_rows`` / ``use_rows`` are boolean masks over playlists."""
    total = np.asarray(binary[use_rows].sum(0)).ravel()
    genre = np.asarray(binary[use_rows & genre_rows].sum(0)).ravel()
    base = float(genre.sum() / max(total.sum(), 1))
    threshold = min(rule.min_lift * base, (1.0 + base) / 2.0)
    share = np.divide(genre, total, out=np.zeros(len(total)), where=total > 0)
    labels = (total >= rule.min_support) & (genre >= rule.min_genre) & (share >= threshold) & (base > 0)
    return {"labels": labels, "base_rate": base, "threshold": threshold}


@dataclasses.dataclass
class LoadedModel:
    label: str
    model: Recommender
    store: Store


def open_models(dirs: list[str | Path], store: Store) -> list[LoadedModel]:
    """Each model with its own training store when that still exists, else ``store`` (same vocabulary)."""
    loaded, labels = [], set()
    for directory in dirs:
        info = read_model_config(directory)
        path = (info.get("store") or {}).get("path")
        own = Store.open(path) if path and Path(path).exists() else store
        model = load_model(directory, store=own)
        label = Path(directory).name
        if label in labels:
            label = f"{label}#{len(loaded)}"
        labels.add(label)
        loaded.append(LoadedModel(label, model, own))
    return loaded


def head_and_tail(store: Store, rows: np.ndarray, at: int) -> tuple[tuple, tuple]:
    """Songs before position ``at`` and from ``at`` on of the playlists at ``rows``, as two CSRs."""
    lengths = np.diff(store.indptr)[rows]
    ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    within = np.arange(ptr[-1]) - np.repeat(ptr[:-1], lengths)  # position inside its playlist
    songs = store.indices[np.repeat(store.indptr[rows], lengths) + within]
    return csr_keep(ptr, songs, within < at), csr_keep(ptr, songs, within >= at)


def run_genres(model_dirs: list[str | Path], store: Store, keywords: list[str] | None = None,
               rule: GenreRule | None = None) -> dict:
    """The genre validation for every model in ``model_dirs`` on ``store``; returns a JSON-able report."""
    rule = rule or GenreRule()
    keywords = keywords or list(DEFAULT_KEYWORDS)
    if not model_dirs:
        raise InputError("give at least one model directory to validate.")
    models = open_models(list(model_dirs), store)
    if not any(m.model.name == "popular" for m in models):
        from segue.models.base import get_model_class

        base_store = models[0].store
        popular = get_model_class("popular")().fit(base_store)
        models.append(LoadedModel("popular", popular, base_store))
    to_model = {m.label: store.ids_in(m.store) for m in models}
    from_model = {m.label: m.store.ids_in(store) for m in models}

    names = store.names
    lengths = np.diff(store.indptr)
    rng = np.random.default_rng(rule.seed)
    # held out = in no model's training store (only meaningful when some model trained on another store)
    other_stores = {str(m.store.path): m.store for m in models if m.store.path != store.path}
    held_out = np.full(store.n_playlists, bool(other_stores))
    for other in other_stores.values():
        held_out &= ~np.isin(store.pids, other.pids)

    masks = {g: title_mask(names, g) for g in keywords}
    chosen: dict[str, np.ndarray] = {}
    evaluated = np.zeros(store.n_playlists, dtype=bool)
    for group, mask in masks.items():
        eligible = mask & (lengths >= rule.seeds + 5)
        pool = eligible & held_out if (eligible & held_out).any() else eligible
        rows = np.flatnonzero(pool)
        rows = np.sort(rng.permutation(rows)[: rule.max_playlists]) if len(rows) else rows
        chosen[group] = rows
        evaluated[rows] = True

    binary = store.csr(binary=True)
    use_rows = ~evaluated
    report = {"store": str(store.path), "rule": rule.describe(), "rule_settings": dataclasses.asdict(rule),
              "models": [m.label for m in models], "genres": {}, "examples": {}}
    for group in keywords:
        rows = chosen[group]
        entry = {"title_playlists": int(masks[group].sum()), "evaluated": int(len(rows)),
                 "held_out": bool(len(rows) and held_out[rows].all())}
        if len(rows) == 0:
            entry["note"] = f"no playlist titled with {group!r} and at least {rule.seeds + 5} songs"
            report["genres"][group] = entry
            continue
        labels = genre_songs(binary, masks[group], use_rows, rule)
        is_genre = labels["labels"]
        entry.update(genre_songs=int(is_genre.sum()), base_rate=labels["base_rate"], threshold=labels["threshold"])
        (seed_ptr, seed_idx), (_, later_idx) = head_and_tail(store, rows, rule.seeds)
        entry["playlist_share"] = float(is_genre[later_idx].mean()) if len(later_idx) else None
        counts_by_model, shares = {}, {}
        for m in models:
            known = map_track_ids(seed_idx, to_model[m.label])
            ids, _ = m.model.recommend(csr_keep(seed_ptr, known, known >= 0), k=rule.k)
            ids = map_track_ids(ids, from_model[m.label])
            hits = np.where(ids >= 0, is_genre[np.clip(ids, 0, None)], False)
            counts_by_model[m.label] = hits.sum(1)
            shares[m.label] = float(hits.sum() / (len(rows) * rule.k))
        entry["recommended_share"] = shares
        popular_share = shares.get("popular") or next((v for k, v in shares.items() if "popular" in k), None)
        entry["lift_over_popular"] = {k: (v / popular_share if popular_share else None) for k, v in shares.items()}
        report["genres"][group] = entry
        report["examples"][group] = [
            {"pid": int(store.pids[r]), "title": names[r], "genre_songs_in_top": {k: int(v[i]) for k, v in
                                                                                counts_by_model.items()}}
            for i, r in enumerate(rows[: rule.examples])
        ]
    return report


def report_markdown(report: dict) -> str:
    models = report["models"]
    lines = ["# Genre validation", "", f"Store: `{report['store']}`", "", f"Rule: {report['rule']}.", "",
             "Share of genre songs among the top recommendations (songs 21+ of the playlists themselves for "
             "reference):", "",
             "| genre | playlists | genre songs | base rate | playlists' own | " + " | ".join(models) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(models)]
    for group, e in report["genres"].items():
        group = group.replace("|", "\\|")
        if "recommended_share" not in e:
            lines.append(f"| {group} | 0 | – | – | – |" + " – |" * len(models))
            continue
        own = "–" if e["playlist_share"] is None else f"{e['playlist_share']:.1%}"
        cells = " | ".join(f"{e['recommended_share'][m]:.1%}" for m in models)
        lines.append(f"| {group} | {e['evaluated']} | {e['genre_songs']} | {e['base_rate']:.1%} | {own} | {cells} |")
    lines += ["", f"Examples (genre songs in the top {report['rule_settings']['k']}):", "",
              "| genre | pid | title | " + " | ".join(models) + " |", "|---|---:|---|" + "---:|" * len(models)]
    for group, examples in report["examples"].items():
        group = group.replace("|", "\\|")
        for ex in examples:
            title = (ex["title"] or "").replace("|", "\\|")
            cells = " | ".join(str(ex["genre_songs_in_top"][m]) for m in models)
            lines.append(f"| {group} | {ex['pid']} | {title} | {cells} |")
    return "\n".join(lines) + "\n"


def check_model_dirs(dirs) -> None:
    for d in dirs:
        if not Path(d).is_dir():
            raise ModelError(f"{d} is not a directory; pass model directories written by `segue train`.")
