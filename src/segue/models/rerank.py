"""Two stages: candidate models propose tracks, a LightGBM ranker reorders them.

This is how the RecSys Challenge 2018 was won (vl6: ALS, item-item and title candidates reranked by gradient
boosting; Avito and MIPT did the same with other candidates). Training, inside :meth:`Rerank.fit`:

1. hold out ``ranker_folds`` disjoint folds of ``min(ranker_playlists, ranker_fraction * playlists)``
   challenge-like playlists each (:func:`~segue.models.rerank_features.make_ranker_split`: the ten categories,
   their seed counts, first or random seeds, titles kept or dropped);
2. per fold, fit the candidate models (``candidates``, e.g. ``als,cooccur,title``) on the playlists outside that
   fold only, so no feature ever sees a ranker playlist's hidden songs (cross-fitting: the ranker learns from
   every fold while each candidate model still sees most of the store);
3. build the candidates (union of each model's top ``n_candidates``, of the query expansion's top
   ``expansion_candidates``: the songs co-occurring most with the first model's top 30, and of the
   playlist-neighbour kNN's top ``knn_candidates`` if that is set) and features of the fold's playlists, their
   seeds limited to songs those models were fitted on (inference drops a seed the store does not know, so the
   ranker learns on seeds like those it meets), label a candidate 1 when it is a hidden song; over all folds,
   train a LightGBM ranker (``rank_xendcg`` by default, ``lambdarank`` as a setting) with one query group per
   playlist, early-stopping on ``validation_fraction`` of the ranker playlists;
4. with ``refit`` (default), refit the candidate models and the feature context on the whole store.

At inference a playlist's candidates are ordered by the ranker, above every other track, which keep the first
candidate model's order, so the ranking covers the whole catalogue like every other model's.

The model directory holds ``ranker.txt`` (LightGBM's text format), ``context.npz`` (per-track facts the
features read), ``candidates/<model>/`` (ordinary model directories) and the report ``rerank.json`` /
``rerank.png`` (feature importance by gain, candidate recall per category and per ``n``).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from segue.config import apply_overrides, setting
from segue.data.mpd import normalize_title
from segue.data.split import write_train_store
from segue.data.store import Store, csr_slice
from segue.errors import InputError, ModelError
from segue.io import write_json
from segue.models.base import (
    ModelConfig,
    Recommender,
    get_model_class,
    load_model,
    register,
)
from segue.models.rerank_features import (
    CONTEXT_FILE,
    NEIGHBOURS,
    CandidateBlock,
    FeatureContext,
    RankerSplit,
    candidate_block,
    feature_names,
    make_ranker_split,
)
from segue.progress import progress_task

log = logging.getLogger(__name__)

RANKER_FILE = "ranker.txt"
REPORT_JSON = "rerank.json"
REPORT_PNG = "rerank.png"
CANDIDATES_DIR = "candidates"
# Candidate list lengths whose recall is reported (besides n_candidates).
RECALL_AT = (50, 100, 200, 500, 1000)
OBJECTIVES = ("rank_xendcg", "lambdarank")  # LightGBM's listwise ranking objectives (groups = playlists)


@dataclasses.dataclass(frozen=True)
class RerankConfig(ModelConfig):
    candidates: str = "als,cooccur,title"  # candidate models, comma-separated; the first orders non-candidates
    candidate_settings: str = ""  # their settings, e.g. "als.factors=64,cooccur.neighbors=100"
    # each model's top n joins the candidate union; at least the challenge's list length (500), so the union
    # holds the first model's whole top 500 (at 200 NDCG fell below als's); 1,000 lets the ranker lift deeper
    # hidden songs into the 500 it returns (candidate recall is its ceiling): +0.0033 NDCG over 500 (paired CI
    # above 0, README two-stage section), at twice the feature rows
    n_candidates: int = setting(1000, ge=1)
    ranker_playlists: int = setting(3000, ge=2)  # challenge-like playlists held out per fold to train the ranker ...
    ranker_fraction: float = setting(0.1, gt=0.0, lt=1.0)  # ... or this share of the store, whichever is smaller
    # cross-fitting: disjoint ranker folds, each with candidate models fitted without it, so the ranker learns from
    # folds x the playlists while every candidate model still sees 1 - ranker_fraction of the store; 2 folds
    # against 1: +0.0022 NDCG (paired CI above 0) at one more candidate fit (README two-stage section)
    ranker_folds: int = setting(2, ge=1)
    min_holdouts: int = setting(5, ge=1)  # hidden tracks a ranker playlist keeps at least
    validation_fraction: float = setting(0.2, gt=0.0, lt=1.0)  # of the ranker playlists, for early stopping
    refit: bool = True  # refit the candidate models on the whole store after training the ranker
    neighbours: int = setting(NEIGHBOURS, ge=1)  # similar training playlists the kNN reads
    knn_candidates: int = setting(0, ge=0)  # the kNN's top songs joining the candidate union (0: none)
    # the query expansion's top songs (co-occurrence summed over the first model's top 30, the ranker's strongest
    # feature, for every track) join the union (0: none; needs cooccur among the candidates): the models' top
    # 1,000s miss songs the expansion ranks high; +0.0015 NDCG over none (paired CI above 0, two seeds) at 13% more
    # rows, more than n_candidates=1500 gives at 50% (README two-stage section)
    expansion_candidates: int = setting(1000, ge=0)
    # the ranker reads whether a playlist's seeds are its first tracks or random positions (recommend's
    # first_seeds; the challenge's categories 8 and 10): without it the ranker cannot tell "title + first 25"
    # from "title + 25 random", whose hidden songs relate to the last seeds differently; +0.0015 NDCG and
    # +0.0023 R-precision at seed 0 (paired CIs above 0), +0.0009 both at seed 1, level on the sparse split
    # (README two-stage section)
    seed_order: bool = True
    # a model saved before a setting existed loads with the behaviour it was trained with (config_from_dict)
    SAVED_BEFORE_IT_EXISTED: ClassVar[dict] = {"expansion_candidates": 0, "seed_order": False}
    # rank_xendcg (Bruch et al. 2020, "An alternative cross entropy loss for learning-to-rank"): as good as
    # lambdarank or better on public benchmarks and much cheaper per tree; here +0.0025 NDCG (paired CI above
    # 0) at a fraction of lambdarank's training time (README two-stage section)
    objective: str = "rank_xendcg"
    num_trees: int = setting(400, ge=1)
    learning_rate: float = setting(0.05, gt=0.0, le=1.0)
    num_leaves: int = setting(31, ge=2)
    min_data_in_leaf: int = setting(100, ge=1)
    feature_fraction: float = setting(0.8, gt=0.0, le=1.0)
    truncation_level: int = setting(100, ge=1)  # lambdarank pairs reach this far down each list (lambdarank only)
    early_stopping: int = setting(30, ge=1)  # rounds without validation NDCG gain
    seed: int = 0
    threads: int = setting(2, ge=1)  # LightGBM threads (fixed, so training is deterministic)

    def __post_init__(self) -> None:
        super().__post_init__()
        names = self.candidate_names()
        if not names:
            raise InputError("rerank: candidates must name at least one model, e.g. candidates=als,cooccur,title.")
        if "rerank" in names or len(set(names)) != len(names):
            raise InputError(f"rerank: candidates={self.candidates!r} must list distinct models other than rerank.")
        if self.ranker_folds * self.ranker_fraction >= 1.0:
            raise InputError(f"rerank: ranker_folds={self.ranker_folds} x ranker_fraction={self.ranker_fraction} "
                             "holds out the whole store; lower one of them.")
        if self.objective not in OBJECTIVES:
            raise InputError(f"rerank: objective={self.objective!r} is not one of {', '.join(OBJECTIVES)}.")

    def candidate_names(self) -> list[str]:
        return [n.strip() for n in self.candidates.split(",") if n.strip()]

    def settings_for(self, model: str) -> list[str]:
        """One candidate model's settings as ``key=value``: rerank's own defaults for it
        (``CANDIDATE_DEFAULTS``), then its ``candidate_settings`` entries ``model.key=value``, which win."""
        items = [s.strip() for s in self.candidate_settings.split(",") if s.strip()]
        for item in items:
            if "." not in item.split("=", 1)[0]:
                raise InputError(f"rerank: candidate setting {item!r} should look like model.key=value.")
        mine = [item.split(".", 1)[1] for item in items if item.split(".", 1)[0].strip() == model]
        return list(CANDIDATE_DEFAULTS.get(model, ())) + mine


# rerank's defaults for its candidate models where they differ from the models' own (candidate_settings override
# them). cooccur keeps 500 similar tracks per track instead of 200: the co-occurrence features sum similarities
# over the seeds and over als's top songs (the query expansion that carries most of the ranker's gain), and a
# denser matrix leaves fewer of those at 0 (NDCG gain measured in the README two-stage section; 1,000 gave no
# more). At the MPD's 2.3M tracks that is at most ~1.2e9 entries (~9 GB), less in practice: a rare song
# co-occurs with fewer than 500 others.
CANDIDATE_DEFAULTS = {"cooccur": ("neighbors=500",)}


# `segue tune rerank`: the ranker's own settings and the candidate list length (candidate models keep their
# defaults and CANDIDATE_DEFAULTS; tune them on their own first and pass them with candidate_settings).
SEARCH_SPACE = {
    "n_candidates": {"low": 50, "high": 1000, "log": True},
    "num_leaves": {"low": 8, "high": 127, "log": True},
    "learning_rate": {"low": 0.01, "high": 0.2, "log": True},
    "min_data_in_leaf": {"low": 20, "high": 500, "log": True},
    "feature_fraction": {"low": 0.5, "high": 1.0},
    "truncation_level": {"low": 20, "high": 300, "log": True},
}


@register
class Rerank(Recommender):
    name = "rerank"
    Config = RerankConfig
    search_space = SEARCH_SPACE
    uses_title_fallback = False  # the candidate models fall back to titles themselves
    reads_seed_order = True
    array_files = (RANKER_FILE, CONTEXT_FILE)  # plus candidates/<model>/ (model directories) and the report

    # ---- training ----------------------------------------------------------------------------
    def _fit(self, train: Store, progress: bool) -> None:
        import lightgbm as lgb

        cfg = self.config
        started = time.perf_counter()
        n_ranker = max(1, min(cfg.ranker_playlists, int(cfg.ranker_fraction * train.n_playlists)))
        split = make_ranker_split(train, cfg.ranker_folds * n_ranker, cfg.min_holdouts, cfg.seed)
        if len(split) < 2 * cfg.ranker_folds:
            raise InputError(f"{train.path}: too few playlists with {cfg.min_holdouts}+ tracks to hold out for the "
                             "ranker; use a larger store or lower min_holdouts (or ranker_folds).")
        seconds = {"candidates": 0.0, "ranker_features": 0.0}
        parts = []
        # fold f takes every ranker_folds-th playlist of the split from the f-th on, so each holds every category
        # alike; the ranker rows come fold after fold, so the split is reordered that way
        folds = [np.arange(f, len(split), cfg.ranker_folds) for f in range(cfg.ranker_folds)]
        fold_splits = [split.subset(members) for members in folds]
        split = split.subset(np.concatenate(folds))
        for fold, fold_split in enumerate(fold_splits):
            clock = time.perf_counter()
            known = self.fit_candidates_without(train, fold_split.rows, progress)
            seconds["candidates"] += time.perf_counter() - clock
            clock = time.perf_counter()
            parts.append(self._ranker_data(fold_split.seeds_known_to(known), progress,
                                           f" {fold + 1}/{cfg.ranker_folds}"))
            seconds["ranker_features"] += time.perf_counter() - clock
        features, labels, groups, found = (np.concatenate(part) for part in zip(*parts))
        recall = candidate_recall(found, np.diff(split.hidden_indptr), split.categories, self._recall_at())
        clock = time.perf_counter()
        names = self.feature_columns()
        rng = np.random.default_rng(cfg.seed)
        is_valid = np.zeros(len(split), dtype=bool)
        is_valid[rng.permutation(len(split))[: max(1, int(round(cfg.validation_fraction * len(split))))]] = True
        playlist_of_row = np.repeat(np.arange(len(split)), groups)
        train_rows, valid_rows = ~is_valid[playlist_of_row], is_valid[playlist_of_row]
        datasets = [lgb.Dataset(features[rows], labels[rows], group=groups[sel][groups[sel] > 0],
                                feature_name=names, free_raw_data=True)
                    for rows, sel in ((train_rows, ~is_valid), (valid_rows, is_valid))]
        params = {
            "objective": cfg.objective, "metric": "ndcg", "eval_at": [cfg.n_candidates],
            "lambdarank_truncation_level": cfg.truncation_level, "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves, "min_data_in_leaf": cfg.min_data_in_leaf,
            "feature_fraction": cfg.feature_fraction, "seed": cfg.seed, "num_threads": cfg.threads,
            "deterministic": True, "force_row_wise": True, "verbosity": -1,
        }
        with progress_task("rerank: ranker trees", total=cfg.num_trees, enabled=progress) as advance:
            booster = lgb.train(params, datasets[0], num_boost_round=cfg.num_trees, valid_sets=[datasets[1]],
                                valid_names=["validation"],
                                callbacks=[lgb.early_stopping(cfg.early_stopping, verbose=False),
                                           _each_iteration(advance)])
        self.ranker = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
        seconds["ranker_training"], clock = time.perf_counter() - clock, time.perf_counter()
        gains = self.ranker.feature_importance("gain")
        self.fit_info = {
            "ranker_playlists": len(split), "ranker_folds": cfg.ranker_folds,
            "validation_playlists": int(is_valid.sum()),
            "ranker_rows": int(len(labels)), "positives": int(labels.sum()),
            "best_iteration": int(booster.best_iteration),
            "validation_ndcg": float(booster.best_score["validation"][f"ndcg@{cfg.n_candidates}"]),
            "feature_gain": dict(sorted(((n, round(float(g), 3)) for n, g in zip(names, gains)),
                                        key=lambda item: -item[1])),
            "candidate_recall": recall,
            "refit": cfg.refit,
        }
        if cfg.refit:
            self.models = self._fit_candidates(train, progress)
            self.context = FeatureContext.from_store(train)
            seconds["refit"] = time.perf_counter() - clock
        for model in self.models.values():
            model.store_info = self.store_info
        seconds["total"] = time.perf_counter() - started
        self.fit_info["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
        log.info("rerank: ranker on %d playlists, %d rows, best iteration %d", len(split), len(labels),
                 booster.best_iteration)

    def fit_candidates_without(self, train: Store, rows: np.ndarray, progress: bool = False) -> np.ndarray:
        """Fit the candidate models and the feature context on ``train`` minus the playlists at ``rows``
        (written as a temporary store with the same track ids); returns which track ids occur in those playlists
        (bool per track: the songs the fitted models know)."""
        rest = np.setdiff1d(np.arange(train.n_playlists), rows)
        with tempfile.TemporaryDirectory(prefix="segue-rerank-") as tmp:
            rest_path = Path(tmp) / "rest"
            rest_path.mkdir()
            write_train_store(train, rest, rest_path, {}, keep_vocabulary=True)
            rest_store = Store.open(rest_path)
            self.models = self._fit_candidates(rest_store, progress)
            self.context = FeatureContext.from_store(rest_store)
            return np.bincount(rest_store.indices, minlength=train.n_tracks) > 0

    def _fit_candidates(self, store: Store, progress: bool) -> dict[str, Recommender]:
        models = {}
        for name in self.config.candidate_names():
            cls = get_model_class(name)
            models[name] = cls(apply_overrides(cls.Config(), self.config.settings_for(name))).fit(store, progress)
        return models

    def _recall_at(self) -> list[int]:
        return sorted({n for n in RECALL_AT if n < self.n_tracks} | {self.config.n_candidates})

    def _ranker_data(self, split: RankerSplit, progress: bool, label: str = ""):
        """Features, 0/1 labels and group sizes of the ranker playlists, and per playlist how many hidden tracks
        are among the models' candidates at each list length of :meth:`_recall_at` and among the candidates
        themselves (with the expansion's and the kNN's)."""
        n_tracks = len(self.context.track_share)
        recall_at = self._recall_at()
        step = self.batch_rows()
        features, labels, groups = [], [], []
        found = np.zeros((len(split), len(recall_at) + 1), dtype=np.int64)  # the last: the candidates themselves
        first_seeds = split.first_seeds()
        with progress_task(f"rerank: ranker features{label}", total=len(split), enabled=progress) as advance:
            for start in range(0, len(split), step):
                stop = min(len(split), start + step)
                seed_ptr, seed_idx = csr_slice(split.seed_indptr, split.seed_indices, start, stop)
                hid_ptr, hid_idx = csr_slice(split.hidden_indptr, split.hidden_indices, start, stop)
                block = self.build_candidates(seed_ptr, seed_idx, split.titles[start:stop], first_seeds[start:stop],
                                              recall_width=recall_at[-1])
                hidden_keys = np.repeat(np.arange(stop - start), np.diff(hid_ptr)) * np.int64(n_tracks) + hid_idx
                hit = np.isin(block.recall_keys, hidden_keys)
                found_rows, found_rank = block.recall_keys[hit] // n_tracks, block.recall_rank[hit]
                for j, n in enumerate(recall_at):
                    found[start:stop, j] = np.bincount(found_rows[found_rank < n], minlength=stop - start)
                features.append(block.features)
                labels.append(np.isin(block.rows * n_tracks + block.tracks, hidden_keys).astype(np.float32))
                groups.append(np.bincount(block.rows, minlength=stop - start))
                found[start:stop, -1] = np.bincount(block.rows, weights=labels[-1], minlength=stop - start)
                advance(stop - start)
        return np.concatenate(features), np.concatenate(labels), np.concatenate(groups), found

    # ---- candidates and features, as training and inference both build them --------------------------------
    def build_candidates(self, indptr: np.ndarray, indices: np.ndarray, titles, first_seeds: np.ndarray,
                         recall_width: int = 0) -> CandidateBlock:
        """:func:`candidate_block` of a batch of playlists with this model's settings (one place maps them, so
        training, inference and the benchmark build the same candidates)."""
        cfg = self.config
        return candidate_block(self.models, self.context, indptr, indices, titles, cfg.n_candidates,
                               recall_width=recall_width, neighbours=cfg.neighbours,
                               knn_candidates=cfg.knn_candidates, expansion_candidates=cfg.expansion_candidates,
                               first_seeds=first_seeds if cfg.seed_order else None)

    def feature_columns(self) -> list[str]:
        """The columns :meth:`build_candidates` gives, in order (the ranker's feature names)."""
        return feature_names(list(self.models), self.config.knn_candidates > 0, self.config.seed_order)

    # ---- inference ---------------------------------------------------------------------------
    def _score(self, indptr: np.ndarray, indices: np.ndarray, titles, first_seeds: np.ndarray) -> np.ndarray:
        block = self.build_candidates(indptr, indices, titles, first_seeds)
        scores = ranked_scores(block, self.ranker.predict(block.features, num_threads=self.config.threads))
        # nothing known (no seeds, no usable title): nothing to rerank, the first model's answer (popularity) stands
        untitled = [not normalize_title(t) for t in titles] if titles is not None else [True] * len(scores)
        unknown = (np.diff(indptr) == 0) & np.asarray(untitled, dtype=bool)
        scores[unknown] = block.base_scores[unknown]
        return scores

    # ---- persistence -------------------------------------------------------------------------
    def _save_arrays(self, directory: Path) -> None:
        self.ranker.save_model(str(directory / RANKER_FILE))
        self.context.save(directory)
        for name, model in self.models.items():
            model.save(directory / CANDIDATES_DIR / name)
        write_report(directory, self.fit_info)

    def _load_arrays(self, directory: Path) -> None:
        import lightgbm as lgb

        if not (directory / RANKER_FILE).is_file():
            raise ValueError(f"{RANKER_FILE} is missing")
        self.ranker = lgb.Booster(model_file=str(directory / RANKER_FILE))
        self.context = FeatureContext.load(directory, self.n_tracks)
        self.models = {name: load_model(directory / CANDIDATES_DIR / name) for name in self.config.candidate_names()}
        expected = self.feature_columns()
        trained = self.ranker.feature_name()
        if trained != expected:  # a model from another segue version: its ranker cannot read these features
            gone = [n for n in trained if n not in expected]
            new = [n for n in expected if n not in trained]
            raise ModelError(f"model {directory}: its ranker was trained on other features than this segue computes "
                             f"(not computed now: {gone or 'none'}; new: {new or 'none'}; or another order); "
                             "retrain it with `segue train rerank`.")


def _each_iteration(advance):
    """A LightGBM callback that advances a progress bar once per tree."""
    def callback(env) -> None:
        advance()

    callback.order = 50  # after early stopping's check
    return callback


def ranked_scores(block: CandidateBlock, ranker_scores: np.ndarray) -> np.ndarray:
    """(b, n_tracks) float32: candidates by ranker score, all >= 0, above the others, which keep the base
    model's order below -1 (its -inf stay -inf)."""
    scores = block.base_scores.astype(np.float64)
    finite = np.isfinite(scores)
    top = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    scores -= np.where(np.isfinite(top), top, 0.0) + 1.0
    if len(block.rows):
        lowest = np.full(len(scores), np.inf)
        np.minimum.at(lowest, block.rows, ranker_scores)
        scores[block.rows, block.tracks] = ranker_scores - lowest[block.rows]
    return scores.astype(np.float32)


def candidate_recall(found: np.ndarray, n_hidden: np.ndarray, categories: np.ndarray, recall_at: list[int]) -> dict:
    """Share of hidden tracks among the candidates, overall and per category: for each list length n the union of
    the models' top n (``found``'s first columns), and under ``"candidates"`` the ranker's candidates themselves
    (its last column: the models' top n_candidates, the expansion's and the kNN's top songs)."""
    def shares(rows) -> list[float]:
        return [round(float(v), 4) for v in found[rows].sum(0) / max(1, n_hidden[rows].sum())]

    groups = {"all": np.ones(len(categories), dtype=bool)}
    groups.update((str(cat), categories == cat) for cat in np.unique(categories).tolist())
    table = {"n": list(recall_at), "candidates": {}}
    for name, rows in groups.items():
        values = shares(rows)
        table[name], table["candidates"][name] = values[:-1], values[-1]
    return table


def write_report(directory: Path, fit_info: dict) -> None:
    """rerank.json (feature gain, candidate recall, training facts) and rerank.png (the gains as bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    write_json(directory / REPORT_JSON, fit_info)
    gains = fit_info.get("feature_gain", {})
    total = sum(gains.values()) or 1.0
    names = list(gains)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(names) + 1.2))
    ax.barh(names, [100 * gains[n] / total for n in names])
    ax.set_xlabel("share of the ranker's total gain (%)")
    ax.set_title(f"rerank: feature importance ({fit_info.get('best_iteration', '?')} trees)")
    fig.tight_layout()
    fig.savefig(directory / REPORT_PNG, dpi=100)
    plt.close(fig)
