"""A diagnosis, never a way to choose: do a finished search's best trials also beat the defaults on the test set?

    python benchmarks/tune_trials_on_test.py WORKDIR STORE MODEL [--top 4]

Run after ``benchmarks/tune_vs_defaults.sh WORKDIR`` (STORE is ``a`` or ``b``, MODEL ``als`` or ``cooccur``):
the defaults (trial 0) and the ``--top`` next-best completed trials of ``WORKDIR/STORE-MODEL-tuned``'s search
are each trained on ``split_STORE/train`` and scored on that split's challenge set, with the paired per-playlist
R-precision difference against the defaults and its bootstrap 95% interval. When every good validation trial
lands at the defaults on test, the defaults sit on a plateau; when the next-best beat them and the winner does
not, the validation split was too noisy to pick.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from segue.data.split import load_split
from segue.evaluate.metrics import bootstrap_ci, compute_metrics
from segue.evaluate.runner import ground_truth, recommend_challenge
from segue.evaluate.tune import config_for, search_space
from segue.models.base import get_model_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("store", help="a or b")
    parser.add_argument("model", help="als or cooccur")
    parser.add_argument("--top", type=int, default=4, help="next-best completed trials to score besides the defaults")
    args = parser.parse_args()
    work = args.workdir
    search = json.loads((work / f"{args.store}-{args.model}-tuned" / "config.json").read_text())["fit_info"]["search"]
    trials = search["trials"]
    complete = sorted((t for t in trials if t["state"] == "complete" and t["number"] != 0), key=lambda t: -t["value"])
    chosen = [t for t in trials if t["number"] == 0] + complete[:args.top]
    split = load_split(work / f"split_{args.store}")
    train = split.train_store()
    gt_indptr, gt_indices, _ = ground_truth(split.challenge, split.answers, train)
    space, cls = search_space(args.model), get_model_class(args.model)
    defaults = None
    for trial in chosen:
        fitted = cls(config_for(args.model, space, trial["params"])).fit(train, progress=False)
        recs, _ = recommend_challenge(fitted, train, split.challenge, progress=False)
        values = compute_metrics(recs, gt_indptr, gt_indices)["r_precision"]
        defaults = values if defaults is None else defaults
        diff = (values - defaults)[np.isfinite(values)]
        low, high = bootstrap_ci(diff)[0]
        print(f"trial {trial['number']:2d}: validation {trial['value']:.4f}, test {np.nanmean(values):.4f}, "
              f"paired vs defaults {diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]", flush=True)


if __name__ == "__main__":
    main()
