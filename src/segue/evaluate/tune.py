"""Choose a model's settings on the user's own data, by the challenge's own protocol (``segue tune``).

``tune(model, store, out)``:

1. carves a challenge-like validation split out of ``store`` with :func:`segue.data.split.make_split` (the ten
   categories, seeds by position or at random, titles kept or removed), sized to the store by
   :func:`validation_per_category`, with the fixed seed :data:`VALIDATION_SEED`. Trials train on its train
   part and are scored on its challenge set: nothing outside ``store`` is ever read, so tuning on
   ``SPLIT/train`` never sees that split's held-out playlists;
2. searches the model's settings with Optuna (TPE with a fixed seed; the defaults, where they lie in the
   space, are trial 0, so the winner is never worse than them on the validation set). A trial is scored
   with segue's own metrics (:mod:`segue.evaluate.metrics`) in :data:`SCORE_STEPS` steps over a fixed
   shuffle of the validation playlists, reporting the running mean after each, so the median pruner stops
   hopeless trials before they score every playlist. That is the only pruning: no model reports results on
   the validation split while it trains (ALS could per iteration, at the cost of a fold-in per report; the
   neural models score their own held-out playlists per round, but only for their early stopping);
3. trains the best settings on the whole ``store`` and writes ``out`` as an ordinary model directory:
   ``config.json`` records the search under ``fit_info.search`` (space, trials, best value, validation
   split), ``study.sqlite3`` is the Optuna study, ``search.png`` plots it.

While it runs, the study and the validation split live beside ``out`` in ``.OUT.tune/``: an interrupted
search resumes from there (rerun the same command), and a finished one continues from ``out/study.sqlite3``
when asked for more trials.

Search spaces: each model declares ``search_space`` (next to its config), a dict from setting name to
``{"low": a, "high": b, "log": bool}`` (a number range; int or float as the setting), ``{"choices": [...]}``,
or a plain value (fixed, not searched). A ``--space`` file (JSON, or TOML by its ``.toml`` suffix) in the
same format replaces the entries it names. Every bound and choice is checked against the setting's
declared range (:func:`segue.config.check_settings`).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import shutil
import time
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segue.config import apply_overrides
from segue.data.split import DEFAULT_MIN_HOLDOUTS, SPLIT_FILE, load_split, make_split, max_per_category
from segue.data.store import Store, csr_slice
from segue.errors import InputError
from segue.evaluate.metrics import CHALLENGE_K, compute_metrics
from segue.evaluate.runner import ground_truth, seeds_for_store
from segue.io import MODEL_OUTPUT, atomic_path, claim_output, read_json
from segue.models.base import get_model_class
from segue.progress import progress_task

log = logging.getLogger(__name__)

METRIC_DIRECTIONS = {"r_precision": "maximize", "ndcg": "maximize", "clicks": "minimize"}
DEFAULT_TRIALS = 20
VALIDATION_SEED = 0
# The challenge holds out 1,000 playlists per category from 1M (1%); small stores get 1% too, at least
# MIN_PER_CATEGORY per category (else one lucky playlist decides a trial), and never more than half of
# what the store allows, so the long playlists categories 9/10 need are not all taken from training.
MAX_PER_CATEGORY = 1000
MIN_PER_CATEGORY = 20
SCORE_STEPS = 4  # running means reported per trial (pruning points)
# Random trials before TPE models the space (Optuna's default is 10; budgets here are often ~20 trials).
STARTUP_TRIALS = 8
STUDY_FILE = "study.sqlite3"
PLOT_FILE = "search.png"
VALIDATION_DIR = "validation"
STUDY_NAME = "segue-tune"
_RANGE_KEYS = {"low", "high", "log"}


# ---- search spaces ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One setting's place in a search space: a range, choices, or a fixed value."""

    name: str
    kind: type  # int, float, str or bool: the setting's type
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None
    value: object = None

    @property
    def fixed(self) -> bool:
        return self.low is None and self.choices is None

    def as_json(self):
        if self.choices is not None:
            return {"choices": list(self.choices)}
        if self.low is not None:
            return {"low": self.low, "high": self.high, "log": self.log}
        return self.value

    def suggest(self, trial):
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.low is None:
            return self.value
        if self.kind is int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def contains(self, value) -> bool:
        if self.choices is not None:
            return value in self.choices
        if self.low is None:
            return value == self.value
        return self.low <= value <= self.high


def _setting_kind(config_cls, name: str) -> type:
    hint = typing.get_type_hints(config_cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def parse_param(config_cls, name: str, spec, where: str) -> Param:
    """Check one entry of a search space against the config's declared setting and return it as a Param."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    if name not in fields:
        raise InputError(f"{where}: unknown setting {name!r} for {config_cls.__name__}; "
                         f"known settings: {', '.join(sorted(fields))}.")
    kind = _setting_kind(config_cls, name)

    def check(value, label: str) -> None:
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            apply_overrides(config_cls(), {name: value})
        except InputError as exc:
            raise InputError(f"{where}: {label} of {name}: {exc}") from None

    if not isinstance(spec, dict):
        check(spec, "the fixed value")
        return Param(name, kind, value=spec)
    if "choices" in spec:
        extra = set(spec) - {"choices"}
        choices = spec["choices"]
        if extra or not isinstance(choices, list) or not choices:
            raise InputError(f"{where}: {name} should be {{\"choices\": [a non-empty list]}} and nothing else.")
        for choice in choices:
            check(choice, f"choice {choice!r}")
        return Param(name, kind, choices=tuple(choices))
    if not {"low", "high"} <= set(spec) or set(spec) - _RANGE_KEYS:
        raise InputError(f"{where}: {name} should be {{\"low\": a, \"high\": b}} (optionally \"log\": true), "
                         f"{{\"choices\": [...]}} or a fixed value; got keys {sorted(spec)}.")
    if kind not in (int, float):
        raise InputError(f"{where}: {name} is a {kind.__name__} setting; give it {{\"choices\": [...]}}.")
    low, high, use_log = spec["low"], spec["high"], spec.get("log", False)
    for label, value in (("low", low), ("high", high)):
        if kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
            raise InputError(f"{where}: {label} of {name} must be an integer (it is an integer setting), "
                             f"got {value!r}.")
        check(value, label)
    if not isinstance(use_log, bool):
        raise InputError(f"{where}: log of {name} must be true or false, got {use_log!r}.")
    if not low < high:
        raise InputError(f"{where}: {name} needs low < high, got low={low!r}, high={high!r} "
                         "(to fix a setting, give its value instead of a range).")
    if use_log and low <= 0:
        raise InputError(f"{where}: {name} has log: true, so low must be > 0 (got {low!r}).")
    return Param(name, kind, low=low, high=high, log=use_log)


def parse_space(config_cls, spec: dict, where: str) -> dict[str, Param]:
    if not isinstance(spec, dict):
        raise InputError(f"{where}: a search space should be an object of setting names, got "
                         f"{type(spec).__name__}.")
    return {name: parse_param(config_cls, name, value, where) for name, value in spec.items()}


def read_space_file(path: str | os.PathLike) -> dict:
    """The raw search space in a JSON file (or TOML, by its ``.toml`` suffix)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".toml":
            with open(path, "rb") as handle:
                return tomllib.load(handle)
        return read_json(path)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}; fix it or pass a JSON file.") from None
    except ValueError as exc:  # orjson's JSONDecodeError
        raise InputError(f"{path} is not valid JSON: {exc}; fix it (or name a .toml file).") from None


def search_space(model: str, space_file: str | os.PathLike | None = None) -> dict[str, Param]:
    """The model's declared search space, with ``space_file``'s entries replacing or adding to it."""
    cls = get_model_class(model)
    declared = getattr(cls, "search_space", None)
    if not declared:
        raise InputError(f"model {model} declares no search space; give one with --space FILE "
                         "(see `segue tune --help`), or add `search_space` next to its config.")
    space = parse_space(cls.Config, declared, f"{model}'s search space")
    if space_file is not None:
        space.update(parse_space(cls.Config, read_space_file(space_file), str(space_file)))
    if all(p.fixed for p in space.values()):
        raise InputError(f"the search space of {model} fixes every setting; nothing to search.")
    return space


def config_for(model: str, space: dict[str, Param], params: dict):
    """The model's config with the fixed values of ``space`` and the sampled ``params`` applied."""
    values = {p.name: p.value for p in space.values() if p.fixed}
    values.update(params)
    return apply_overrides(get_model_class(model).Config(), values)


# ---- validation split ------------------------------------------------------------------------------
def validation_per_category(store: Store, seed: int = VALIDATION_SEED) -> int:
    """Validation playlists per category for ``store`` (see :data:`MAX_PER_CATEGORY`)."""
    allowed = max_per_category(store, seed)
    if allowed < 1:
        raise InputError(f"{store.path} cannot fill even one validation playlist per challenge category "
                         f"(categories 9/10 need playlists of >= {100 + DEFAULT_MIN_HOLDOUTS} tracks with a "
                         "title); tune on a larger store.")
    wanted = min(MAX_PER_CATEGORY, max(MIN_PER_CATEGORY, store.n_playlists // 100))
    return max(1, min(wanted, allowed // 2))


def _csr_take(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows`` (in that order) of a CSR as a CSR of their own, vectorised."""
    lengths = np.diff(indptr)[rows]
    out = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    starts = np.repeat(indptr[:-1][rows] - out[:-1], lengths)
    return out, values[np.arange(out[-1]) + starts]


class Validation:
    """A validation split ready for scoring: its train store, seeds and answers in a fixed shuffled order."""

    def __init__(self, path: Path, metric: str) -> None:
        split = load_split(path)
        self.split = split
        self.store = split.train_store()
        self.metric = metric
        challenge = split.challenge
        indptr, indices, _ = seeds_for_store(challenge, self.store)
        gt_indptr, gt_indices, _ = ground_truth(challenge, split.answers, self.store)
        order = np.random.default_rng(VALIDATION_SEED).permutation(len(challenge))  # categories mixed in steps
        self.seeds = _csr_take(indptr, indices, order)
        self.answers = _csr_take(gt_indptr, gt_indices, order)
        self.titles = [challenge.names[i] for i in order.tolist()]
        self.first_seeds = challenge.first_seeds()[order]
        self.pids = challenge.pids[order]
        self.bounds = np.linspace(0, len(challenge), SCORE_STEPS + 1).round().astype(int)

    def __len__(self) -> int:
        return len(self.titles)

    def score(self, model, report=None) -> float:
        """Mean of the metric over the validation playlists; ``report(step, running mean)`` after each step
        (it may raise to stop early)."""
        total, count = 0.0, 0
        for step, (start, stop) in enumerate(zip(self.bounds[:-1], self.bounds[1:])):
            if stop <= start:
                continue
            ids, _ = model.recommend(csr_slice(*self.seeds, start, stop), k=CHALLENGE_K,
                                     titles=self.titles[start:stop], first_seeds=self.first_seeds[start:stop])
            values = compute_metrics(ids, *csr_slice(*self.answers, start, stop))[self.metric]
            values = values[~np.isnan(values)]
            total, count = total + float(values.sum()), count + len(values)
            if report is not None and count:
                report(step, total / count)
        if not count:
            raise InputError(f"the validation split {self.split.path} has no playlist with answers to score.")
        return total / count


def _validation_split(work: Path, store: Store) -> dict:
    """Reuse the validation split in ``work`` when it was cut from this very store, else cut it."""
    path = work / VALIDATION_DIR
    if (path / SPLIT_FILE).is_file():
        info = read_json(path / SPLIT_FILE)
        if (info.get("source", {}).get("fingerprint") == store.fingerprint and info.get("seed") == VALIDATION_SEED
                and (path / "train").is_dir()):
            log.info("reusing the validation split in %s", path)
            return info
    per_category = validation_per_category(store)
    return make_split(store, path, per_category=per_category, seed=VALIDATION_SEED, force=True).details


# ---- the search ------------------------------------------------------------------------------------
@dataclass
class TuneResult:
    out: Path
    best_value: float
    best_params: dict
    default_value: float | None
    trials: int
    pruned: int
    resumed: int
    search: dict


def work_dir(out: Path) -> Path:
    """Where a running search keeps its study and validation split: ``.OUT.tune`` beside ``out``."""
    return out.parent / f".{out.name}.tune"


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _open_study(work: Path, out: Path, identity: dict, seed: int, fresh: bool):
    optuna = _optuna()
    study_path = work / STUDY_FILE
    if not study_path.exists() and not fresh and (out / STUDY_FILE).is_file():
        shutil.copy2(out / STUDY_FILE, study_path)  # a finished search, asked for more trials
    storage = optuna.storages.RDBStorage(f"sqlite:///{study_path}")
    study = optuna.create_study(
        storage=storage, study_name=STUDY_NAME, load_if_exists=True, direction=identity["direction"],
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    recorded = study.user_attrs.get("identity")
    if recorded is None:
        study.set_user_attr("identity", identity)
    elif recorded != identity:
        changed = sorted(k for k in identity if recorded.get(k) != identity[k])
        raise InputError(f"the search kept in {study_path} was for another {', '.join(changed)}; "
                         "rerun with --fresh to start a new search (its trials are discarded).")
    # Our output lock means no other process runs this search: a trial still "running" was interrupted.
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    if study.trials:  # resuming: a sampler seeded as before would draw the same random trials again
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=STARTUP_TRIALS)
    return study


def _finished(study) -> list:
    states = study.get_trials(deepcopy=False)
    return [t for t in states if t.state.name in ("COMPLETE", "PRUNED")]


def tune(model: str, store: str | os.PathLike, out: str | os.PathLike, trials: int | None = None,
         minutes: float | None = None, space_file: str | os.PathLike | None = None, metric: str = "r_precision",
         seed: int = 0, fresh: bool = False, progress: bool = True, force: bool = False) -> TuneResult:
    """Search ``model``'s settings on a validation split of ``store`` and write the winner, trained on all of
    ``store``, to ``out`` (see the module docstring). ``trials``: finished trials the study should hold
    (default :data:`DEFAULT_TRIALS` when ``minutes`` is not given); ``minutes``: stop starting trials after
    this long."""
    if metric not in METRIC_DIRECTIONS:
        raise InputError(f"--metric {metric!r} is not one of {', '.join(METRIC_DIRECTIONS)}.")
    if trials is not None and trials < 1:
        raise InputError(f"--trials must be at least 1 (got {trials}).")
    if minutes is not None and not (minutes > 0 and math.isfinite(minutes)):
        raise InputError(f"--minutes must be a positive number (got {minutes}).")
    if trials is None and minutes is None:
        trials = DEFAULT_TRIALS
    space = search_space(model, space_file)
    cls = get_model_class(model)
    store = store if isinstance(store, Store) else Store.open(store)
    out = Path(out).absolute()
    work = work_dir(out)
    with claim_output(out, MODEL_OUTPUT, inputs=[store.path], force=force):
        if fresh and work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        validation_info = _validation_split(work, store)
        validation = Validation(work / VALIDATION_DIR, metric)
        identity = {"model": model, "metric": metric, "direction": METRIC_DIRECTIONS[metric],
                    "store_fingerprint": store.fingerprint, "validation_seed": VALIDATION_SEED,
                    "space": {name: p.as_json() for name, p in space.items()}}
        study = _open_study(work, out, identity, seed, fresh)
        resumed = len(_finished(study))
        defaults = dataclasses.asdict(cls.Config())
        if not study.trials:  # the defaults first (as far as the space holds them)
            held = {n: defaults[n] for n, p in space.items() if p.contains(defaults[n])}
            study.enqueue_trial({n: v for n, v in held.items() if not space[n].fixed},
                                user_attrs={"defaults": len(held) == len(space)})
        _run_trials(study, model, space, validation, trials, minutes, progress)
        finished = _finished(study)
        if not any(t.state.name == "COMPLETE" for t in finished):
            raise InputError(f"no trial of the search in {work} completed; see the log (SEGUE_LOG=INFO).")
        best = study.best_trial
        config = config_for(model, space, best.params)
        search = _search_record(study, identity, validation_info, seed, len(validation))
        fitted = cls(config).fit(store, progress=progress)
        fitted.fit_info["search"] = search
        fitted.save(out)
        with atomic_path(out / STUDY_FILE) as tmp:
            shutil.copy2(work / STUDY_FILE, tmp)
        _plot_search(study, search, out / PLOT_FILE)
        shutil.rmtree(work, ignore_errors=True)
    complete = [t for t in finished if t.state.name == "COMPLETE"]
    return TuneResult(out=out, best_value=float(best.value), best_params=dict(best.params),
                      default_value=search["default_value"], trials=len(finished),
                      pruned=len(finished) - len(complete), resumed=resumed, search=search)


def _run_trials(study, model: str, space: dict[str, Param], validation: Validation, trials: int | None,
                minutes: float | None, progress: bool) -> None:
    optuna = _optuna()
    done = len(_finished(study))
    remaining = None if trials is None else max(0, trials - done)
    if remaining == 0:
        return
    cls = get_model_class(model)

    def objective(trial) -> float:
        config = config_for(model, space, {name: p.suggest(trial) for name, p in space.items() if not p.fixed})
        fitted = cls(config).fit(validation.store, progress=False)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        return validation.score(fitted, report)

    with progress_task(f"tune {model}", trials, progress) as advance:
        advance(done)

        def update(study, trial) -> None:
            best = study.best_value if any(t.state.name == "COMPLETE" for t in study.trials) else float("nan")
            advance(1, **{f"best {validation.metric}": best})
            log.info("trial %d %s: %s %s", trial.number, trial.state.name, trial.value, trial.params)

        study.optimize(objective, n_trials=remaining, timeout=None if minutes is None else minutes * 60,
                       callbacks=[update], catch=())


def _importances(study) -> dict[str, float]:
    optuna = _optuna()
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(complete) < 2 or not study.best_trial.params:
        return {}
    try:
        values = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as exc:  # e.g. every trial sampled one value
        log.info("parameter importances unavailable: %s", exc)
        return {}
    return {name: round(float(v), 4) for name, v in values.items()}


def _search_record(study, identity: dict, validation_info: dict, seed: int, n_validation: int) -> dict:
    """What ``config.json`` keeps of the search."""
    trials = [{"number": t.number, "state": t.state.name.lower(),
               "value": None if t.value is None else round(float(t.value), 6), "params": t.params}
              for t in _finished(study)]
    first = study.trials[0] if study.trials else None
    default_value = first.value if first is not None and first.user_attrs.get("defaults") \
        and first.state.name == "COMPLETE" else None
    return {
        "metric": identity["metric"],
        "direction": identity["direction"],
        "space": identity["space"],
        "sampler": {"name": "TPE", "seed": seed},
        "pruner": {"name": "median", "steps": SCORE_STEPS},
        "best_value": round(float(study.best_value), 6),
        "best_params": study.best_trial.params,
        "best_trial": study.best_trial.number,
        "default_value": None if default_value is None else round(float(default_value), 6),
        "n_trials": len(trials),
        "n_pruned": sum(t["state"] == "pruned" for t in trials),
        "importances": _importances(study),
        "validation": {
            "seed": validation_info.get("seed"),
            "per_category": validation_info.get("per_category"),
            "playlists": n_validation,
            "train_playlists": validation_info.get("train_playlists"),
            "source_fingerprint": identity["store_fingerprint"],
        },
        "trials": trials,
    }


def _plot_search(study, search: dict, path: Path) -> None:
    """Value per trial (pruned trials at their last running mean) with the best so far, and importances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    better = max if search["direction"] == "maximize" else min
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    pruned = [t for t in study.trials if t.state.name == "PRUNED" and t.intermediate_values]
    left.scatter([t.number for t in complete], [t.value for t in complete], s=18, label="trial")
    if pruned:
        left.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                     s=18, marker="x", color="grey", label="pruned (running mean)")
    if complete:
        running = np.array([t.value for t in complete], dtype=float)
        running = np.maximum.accumulate(running) if better is max else np.minimum.accumulate(running)
        left.step([t.number for t in complete], running, where="post", color="C3", label="best so far")
    left.set_xlabel("trial")
    left.set_ylabel(f"validation {search['metric']}")
    left.set_title(f"search ({search['n_trials']} trials, best {search['best_value']:.4f})")
    left.legend(loc="best", fontsize=8)
    importances = search["importances"]
    if importances:
        names = list(importances)[::-1]
        right.barh(names, [importances[n] for n in names])
        right.set_xlabel("importance (fANOVA, share of variance)")
    else:
        right.text(0.5, 0.5, "too few trials for importances", ha="center", va="center")
        right.set_axis_off()
    right.set_title("parameter importances")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buffer.getvalue())


__all__ = ["tune", "search_space", "parse_space", "read_space_file", "config_for", "validation_per_category",
           "Validation", "TuneResult", "work_dir", "Param", "STUDY_FILE", "PLOT_FILE",
           "METRIC_DIRECTIONS"]
