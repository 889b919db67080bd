"""Genre validation, the seed write-up's check automated: do recommendations stay in the playlist's genre?

The write-up counted country songs among the top-15 recommendations for a country playlist (and looked at
rap/hip-hop and Christmas playlists). Here, for each keyword group (``"rap|hip hop"`` = either phrase; the
seed's three genres first, then rock, worship, workout, chill):

1. **Genre playlists**: playlists whose normalised title (``segue.data.mpd.normalize_title``) contains the
   keyword as whole word(s).
2. **Genre labels** (:class:`GenreRule`), decided where real data has support: by default an **artist**
   is a genre's, and every song of that artist a genre song; ``level="album"`` labels albums, and
   ``level="song"`` songs themselves (only sensible on big stores: on real playlists most songs occur in
   1-3 playlists, so almost no song has the support). Counting each unit once per playlist, a unit is
   labelled when it occurs in at least ``min_support`` playlists (default: adapts to the data, 2 below
   1,000 playlists up to 5 from 100,000) and the lower bound of the Wilson score interval (one-sided,
   ``z``) of its genre-playlist share is at least min(``min_lift`` x the base rate, (1 + base rate) / 2),
   the base rate being the genre playlists' share of all unit occurrences. A lower bound rather than a
   fixed count: one genre playlist out of one is not evidence, ten out of twelve is. The defaults (95%
   one-sided, lift 3) are conventional choices, not tuned: checked on dense generated data and on a
   sparse generated store where most songs occur in 1-3 playlists (``tests/test_genres.py``). Labels are cross-fitted: the evaluated playlists of a genre are cut into
   two halves, and each half is judged with labels counted on every other playlist of the store (the
   other half included), so no playlist labels its own songs and few genre playlists are lost to labelling.
3. **Evaluation**: up to ``max_playlists`` genre playlists with at least ``seeds + 5`` songs, preferring
   playlists held out of the models' training stores (by pid). Each model gets the first ``seeds`` (20)
   songs, no title (the title names the genre), and recommends ``k`` (15) songs, seeds excluded. Reported:
   the share of genre songs among those recommendations with a bootstrap 95% CI over playlists, next to
   the playlists' own share among their later songs (21+) and ``popular`` (fitted on the fly on the first
   model's store when none is given), with the coverage behind each figure (labelled units and songs,
   and the share of the evaluated playlists' seed songs that carry the label). When too little is
   labelled to judge (no label, or seed coverage under ``min_coverage``), the entry carries a warning.

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
from segue.evaluate.metrics import bootstrap_ci
from segue.models.base import Recommender, load_model, read_model_config

log = logging.getLogger(__name__)

DEFAULT_KEYWORDS = ("country", "rap|hip hop", "christmas", "rock", "worship", "workout", "chill")


LEVELS = ("artist", "album", "song")


@dataclasses.dataclass(frozen=True)
class GenreRule:
    level: str = "artist"       # unit labelled: artist or album (songs inherit the label), or song
    min_lift: float = 3.0       # the share's lower bound must reach min_lift x the base rate ...
    z: float = 1.645            # ... at one-sided 95% (Wilson score interval)
    min_support: int | None = None  # playlists holding the unit; None: adapts to the data size
    min_coverage: float = 0.05  # warn below this share of labelled seed songs in the genre playlists
    seeds: int = 20             # seed songs given to the models (the write-up: songs 1-20)
    k: int = 15                 # recommendations counted (the write-up: top 15)
    max_playlists: int = 200    # evaluated playlists per genre
    examples: int = 3           # named example playlists per genre in the table
    seed: int = 0

    def __post_init__(self):
        if self.level not in LEVELS:
            raise InputError(f"genre label level {self.level!r} must be one of {', '.join(LEVELS)}.")
        for name in ("min_lift", "z", "min_coverage"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"genre rule setting {name} must be a finite number >= 0, got {value!r}.")
        if self.min_support is not None and self.min_support < 1:
            raise InputError(f"genre rule setting min_support must be at least 1, got {self.min_support}.")

    def support_for(self, n_playlists: int) -> int:
        """``min_support``, or by data size: 2 below 1,000 playlists, log10(playlists) up to 5."""
        if self.min_support is not None:
            return self.min_support
        return int(max(2, min(5, np.floor(np.log10(max(n_playlists, 1))))))

    def describe(self, n_playlists: int) -> str:
        inherit = "" if self.level == "song" else f"; a song inherits its {self.level}'s label"
        return (f"labels: a{'n' if self.level[0] in 'aeiou' else ''} {self.level} is a genre's when it occurs in "
                f">= {self.support_for(n_playlists)} playlists and the {1 - _one_sided_alpha(self.z):.0%} "
                f"lower bound (Wilson) of its share of genre-titled playlists is >= min({self.min_lift:g} x base "
                f"rate, (1 + base rate) / 2){inherit}; models get the first {self.seeds} songs (no title) and "
                f"recommend {self.k}, seeds excluded")


def _one_sided_alpha(z: float) -> float:
    from math import erfc, sqrt

    return 0.5 * erfc(z / sqrt(2))


def wilson_lower(successes: np.ndarray, trials: np.ndarray, z: float) -> np.ndarray:
    """Lower bound of the Wilson score interval for successes / trials (0 where trials is 0)."""
    n = np.maximum(trials, 1).astype(np.float64)
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.where(trials > 0, (centre - spread) / (1 + z * z / n), 0.0)


def unit_matrix(store: Store, level: str) -> sp.csr_matrix:
    """Binary playlists x units (songs, artists or albums): 1 when the playlist holds the unit."""
    songs = store.csr(binary=True)
    if level == "song":
        return songs
    unit_of = store.track_artist if level == "artist" else store.track_album
    known = np.flatnonzero(unit_of >= 0)
    n_units = store.n_artists if level == "artist" else store.n_albums
    to_unit = sp.csr_matrix((np.ones(len(known), np.float32), (known, unit_of[known])),
                            shape=(store.n_tracks, n_units))
    units = (songs @ to_unit).tocsr()
    units.data[:] = 1
    return units


def label_units(total: np.ndarray, genre: np.ndarray, rule: GenreRule, min_support: int) -> dict:
    """Label units from their playlist counts: ``total`` playlists hold each unit, ``genre`` of them genre ones."""
    base = float(genre.sum() / max(total.sum(), 1))
    threshold = min(rule.min_lift * base, (1.0 + base) / 2.0)
    lower = wilson_lower(genre, total, rule.z)
    labels = (total >= min_support) & (lower >= threshold) & (base > 0)
    return {"labels": labels, "base_rate": base, "threshold": threshold}


def column_sums(units: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Playlists holding each unit, over ``rows`` (a boolean mask or row indices)."""
    return np.asarray(units[rows].sum(0)).ravel()


def song_labels(store: Store, unit_labels: np.ndarray, level: str) -> np.ndarray:
    """(n_tracks,) bool: songs labelled directly, or through their artist's / album's label."""
    if level == "song":
        return unit_labels
    unit_of = store.track_artist if level == "artist" else store.track_album
    return np.where(unit_of >= 0, unit_labels[np.clip(unit_of, 0, None)], False)


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
    for group, mask in masks.items():
        eligible = mask & (lengths >= rule.seeds + 5)
        pool = eligible & held_out if (eligible & held_out).any() else eligible
        rows = np.flatnonzero(pool)
        rows = np.sort(rng.permutation(rows)[: rule.max_playlists]) if len(rows) else rows
        chosen[group] = rows

    units = unit_matrix(store, rule.level)
    total_all = column_sums(units, np.ones(store.n_playlists, dtype=bool))
    min_support = rule.support_for(store.n_playlists)
    report = {"store": str(store.path), "rule": rule.describe(store.n_playlists), "level": rule.level,
              "min_support": min_support, "rule_settings": dataclasses.asdict(rule),
              "models": [m.label for m in models], "genres": {}, "examples": {}}
    for group in keywords:
        rows = chosen[group]
        entry = {"title_playlists": int(masks[group].sum()), "evaluated": int(len(rows)),
                 "held_out": bool(len(rows) and held_out[rows].all())}
        if len(rows) == 0:
            entry["note"] = f"no playlist titled with {group!r} and at least {rule.seeds + 5} songs"
            report["genres"][group] = entry
            continue
        # Cross-fitted labels: playlists 0, 2, 4, ... of `rows` are judged with labels counted without
        # them, and 1, 3, 5, ... likewise; is_genre[f] is fold f's song labels.
        genre_all = column_sums(units, masks[group])
        fold = np.arange(len(rows)) % 2
        folds = [label_units(total_all - held, genre_all - held, rule, min_support)
                 for held in (column_sums(units, rows[fold == f]) for f in (0, 1))]
        is_genre = np.stack([song_labels(store, f["labels"], rule.level) for f in folds])
        (seed_ptr, seed_idx), (tail_ptr, tail_idx) = head_and_tail(store, rows, rule.seeds)
        seed_fold = np.repeat(fold, np.diff(seed_ptr))
        seed_coverage = float(is_genre[seed_fold, seed_idx].mean()) if len(seed_idx) else 0.0
        entry.update(labelled_units=int(round(np.mean([f["labels"].sum() for f in folds]))),
                     genre_songs=int(round(is_genre.sum(1).mean())), seed_coverage=seed_coverage,
                     base_rate=float(np.mean([f["base_rate"] for f in folds])),
                     threshold=float(np.mean([f["threshold"] for f in folds])))
        own = _per_playlist_share(tail_ptr, is_genre[np.repeat(fold, np.diff(tail_ptr)), tail_idx])
        entry["playlist_share"], entry["playlist_share_ci95"] = _mean_and_ci(own)
        counts_by_model, shares, cis = {}, {}, {}
        for m in models:
            known = map_track_ids(seed_idx, to_model[m.label])
            ids, _ = m.model.recommend(csr_keep(seed_ptr, known, known >= 0), k=rule.k)
            ids = map_track_ids(ids, from_model[m.label])
            hits = (ids >= 0) & is_genre[fold[:, None], np.clip(ids, 0, None)]
            counts_by_model[m.label] = hits.sum(1)
            shares[m.label], cis[m.label] = _mean_and_ci(hits.sum(1) / rule.k)
        entry["recommended_share"], entry["recommended_share_ci95"] = shares, cis
        popular_share = shares.get("popular") or next((v for k, v in shares.items() if "popular" in k), None)
        entry["lift_over_popular"] = {k: (v / popular_share if popular_share else None) for k, v in shares.items()}
        if entry["labelled_units"] == 0 or seed_coverage < rule.min_coverage:
            entry["warning"] = (f"too little is labelled to judge {group!r}: {entry['labelled_units']} "
                                f"{rule.level}s labelled, {seed_coverage:.1%} of its playlists' seed songs "
                                f"(< {rule.min_coverage:.0%}); the shares say little. Use a bigger store"
                                + ("" if rule.level == "artist" else " or --level artist") + ".")
            log.warning(entry["warning"])
        report["genres"][group] = entry
        report["examples"][group] = [
            {"pid": int(store.pids[r]), "title": names[r], "genre_songs_in_top": {k: int(v[i]) for k, v in
                                                                                counts_by_model.items()}}
            for i, r in enumerate(rows[: rule.examples])
        ]
    return report


def _per_playlist_share(indptr: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Per CSR row, the share of True flags (NaN for an empty row)."""
    lengths = np.diff(indptr)
    hits = np.bincount(np.repeat(np.arange(len(lengths)), lengths), weights=flags, minlength=len(lengths))
    return np.where(lengths > 0, hits / np.maximum(lengths, 1), np.nan)


def _mean_and_ci(values: np.ndarray) -> tuple[float | None, list[float] | None]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None, None
    lo, hi = bootstrap_ci(finite)[0]
    return float(finite.mean()), [float(lo), float(hi)]


def _share(entry: dict, model: str | None = None) -> str:
    """``12.3% ±4.5`` (half the 95% CI, in points) for a model, or the playlists' own share."""
    value = entry["playlist_share"] if model is None else entry["recommended_share"][model]
    ci = entry["playlist_share_ci95"] if model is None else entry["recommended_share_ci95"][model]
    if value is None:
        return "–"
    return f"{value:.1%}" + (f" ±{(ci[1] - ci[0]) * 50:.1f}" if ci else "")


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and one row per genre: coverage beside the figures; ``!`` marks a genre with a warning."""
    models = report["models"]
    unit = report["level"]
    header = ["genre", "playlists", f"{unit}s labelled" if unit != "song" else "songs labelled", "genre songs",
              "seeds labelled", "base rate", "playlists' own", *models]
    rows = []
    for group, e in report["genres"].items():
        if "recommended_share" not in e:
            rows.append([group, "0", *["–"] * (len(header) - 2)])
            continue
        rows.append([group + (" !" if "warning" in e else ""), str(e["evaluated"]), f"{e['labelled_units']:,}",
                     f"{e['genre_songs']:,}", f"{e['seed_coverage']:.1%}", f"{e['base_rate']:.1%}", _share(e),
                     *(_share(e, m) for m in models)])
    return header, rows


def footer_lines(report: dict) -> list[str]:
    """What goes under the table: how the labels were decided, then one line per warning."""
    lines = [report["rule"] + "."]
    lines += [f"! {e['warning']}" for e in report["genres"].values() if "warning" in e]
    return lines


def report_markdown(report: dict) -> str:
    header, rows = table_rows(report)
    models = report["models"]
    lines = ["# Genre validation", "", f"Store: `{report['store']}`", "",
             "Share of genre songs among the top recommendations (± half the 95% bootstrap CI over playlists, "
             "in points); the playlists' own later songs (21+) for reference:", "",
             "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
             "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    for line in footer_lines(report):
        lines += ["", line]
    lines += ["", f"Examples (genre songs in the top {report['rule_settings']['k']}):", "",
              "| genre | pid | title | " + " | ".join(models) + " |", "|---|---:|---|" + "---:|" * len(models)]
    for group, examples in report["examples"].items():
        group = group.replace("|", "\\|")
        for ex in examples:
            title = (ex["title"] or "").replace("|", "\\|")
            cells = " | ".join(str(ex["genre_songs_in_top"][m]) for m in models)
            lines.append(f"| {group} | {ex['pid']} | {title} | {cells} |")
    return "\n".join(lines) + "\n"


def plot_png(report: dict, path: Path) -> None:
    """Per-genre bars (one per model) with 95% CIs, and the playlists' own share as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segue.io import atomic_path

    groups = [g for g, e in report["genres"].items() if "recommended_share" in e]
    models = report["models"]
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) + 2), 4), dpi=100)
    x = np.arange(len(groups))
    for i, model in enumerate(models):
        values = np.array([report["genres"][g]["recommended_share"][model] for g in groups])
        bounds = np.array([report["genres"][g]["recommended_share_ci95"][model] for g in groups]).reshape(-1, 2)
        errors = np.abs(bounds.T - values)
        ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, yerr=errors, capsize=2, label=model)
    own = [report["genres"][g]["playlist_share"] for g in groups]
    ax.scatter(x, [np.nan if v is None else v for v in own], marker="_", s=900, color="black", zorder=3,
               label="playlists' own (songs 21+)")
    ax.set_xticks(x)
    ax.set_xticklabels([g + (" (!)" if "warning" in report["genres"][g] else "") for g in groups], fontsize=8)
    ax.set_ylabel(f"share of genre songs in the top {report['rule_settings']['k']}")
    ax.set_title(f"Genre songs among the recommendations ({report['level']} labels, 95% CIs)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def check_model_dirs(dirs) -> None:
    for d in dirs:
        if not Path(d).is_dir():
            raise ModelError(f"{d} is not a directory; pass model directories written by `segue train`.")
