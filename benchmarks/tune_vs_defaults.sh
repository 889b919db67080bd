#!/usr/bin/env bash
# `segue tune` against the defaults, on generated data (issue 16). Usage:
#   benchmarks/tune_vs_defaults.sh WORKDIR [TRIALS] [STORES]
# STORES (default "a b") picks the stores to run; each is kept in WORKDIR, so a rerun reuses what is done.
#   a: 8,000 playlists of the generator's default (realistic) profile, as sparse as the real MPD's first
#      8,000; split 50 per category (500 test playlists).
#   b: far sparser: 3,000 playlists of the realistic profile with a flatter song popularity (Zipf exponent
#      1.1 instead of 1.4) and fewer global hits (at most 5% of a playlist's segments instead of 15%), so each
#      song is in far fewer playlists (the figures are printed first); split 30 per category (300 test).
# On each, als and cooccur are tuned on SPLIT/train only (segue tune carves its own validation split out of
# it), the defaults are trained on the same SPLIT/train, and all four models are scored on the split's own
# challenge set, as `segue evaluate` scores them, with bootstrap 95% intervals of each mean and of the
# paired per-playlist difference tuned - defaults.
# SEGUE (default `segue`) and PYTHON (default `python`) name the commands to run; PYTHON must import segue.
set -euo pipefail
work=${1:?usage: $0 WORKDIR [TRIALS] [STORES]}
trials=${2:-20}
stores=${3:-a b}
segue=${SEGUE:-segue}
python=${PYTHON:-python}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$work"
cd "$work"
run() { echo "+ $*" >&2; $segue "$@"; }

synth_sparse() {  # out playlists seed: the realistic profile, flatter popularity and fewer hits
  echo "+ synth (sparse profile) $*" >&2
  $python - "$@" <<'PY'
import dataclasses, sys
from segue.data.synth import synthesize
from segue.data.synth.profiles import REALISTIC

sparse = dataclasses.replace(REALISTIC, name="realistic-sparse", zipf_exponent=1.1, hits_max=0.05)
synthesize(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]), profile=sparse)
PY
}

for data in $stores; do
  if [ ! -d "split_$data" ]; then
    case $data in
      a) run synth -n 8000 --seed 0 --out raw_a --no-progress; per_category=50 ;;
      b) synth_sparse raw_b 3000 1; per_category=30 ;;
      *) echo "unknown store $data (a or b)" >&2; exit 2 ;;
    esac
    run ingest "raw_$data" --out "store_$data" --no-progress --workers 1
    run split "store_$data" --out "split_$data" --per-category "$per_category"
  fi
  for model in cooccur als; do
    [ -d "$data-$model-default" ] || run train "$model" --store "split_$data/train" --out "$data-$model-default" --no-progress
    if [ ! -d "$data-$model-tuned" ]; then
      start=$(date +%s)
      run tune "$model" --store "split_$data/train" --out "$data-$model-tuned" --trials "$trials" --no-progress
      echo "tune $model on $data: $(( $(date +%s) - start )) s wall" | tee -a tune_times.txt >&2
    fi
  done
done

# Per store: how songs spread over its playlists; then each model on the split's own challenge set (tuned on
# SPLIT/train only), the paired difference tuned - defaults, and what each search chose.
$python - $stores <<'PY'
import json, sys
import numpy as np
from segue.data.split import load_split
from segue.data.stats import occurrence_stats
from segue.data.store import Store
from segue.evaluate.metrics import bootstrap_ci
from segue.evaluate.runner import evaluate_model

METRICS = ("r_precision", "ndcg", "clicks")
for data in sys.argv[1:]:
    store = Store.open(f"store_{data}")
    occ = occurrence_stats(store.indptr, store.indices)
    print(f"store {data}: {occ['playlists']:,} playlists, {len(store.indices):,} entries, {occ['songs']:,} songs, "
          f"{occ['playlists_per_song']:.2f} playlists per song, {occ['in_1']:.1%} of songs in 1 playlist, "
          f"{occ['in_le_3']:.1%} in <= 3, top song in {occ['top_song_share']:.1%} of playlists")
    split = load_split(f"split_{data}")
    for model in ("cooccur", "als"):
        scores = {kind: evaluate_model(f"{data}-{model}-{kind}", split, progress=False) for kind in ("default", "tuned")}
        for kind, score in scores.items():
            summary = score.summary()
            overall, (low, high) = summary["overall"], summary["ci95"]["r_precision"]
            print(f"  {model} {kind:7s} R-precision {overall['r_precision']:.4f} [{low:.4f}, {high:.4f}]  "
                  f"NDCG {overall['ndcg']:.4f}  clicks {overall['clicks']:.2f}  (n={overall['n']})")
        diff = np.column_stack([scores["tuned"].values[m] - scores["default"].values[m] for m in METRICS])
        bounds = bootstrap_ci(diff)
        print("  " + model + " tuned - defaults (paired, 95%): " + "; ".join(
            f"{m} {np.nanmean(diff[:, j]):+.4f} [{bounds[j, 0]:+.4f}, {bounds[j, 1]:+.4f}]" for j, m in enumerate(METRICS)))
        search = json.load(open(f"{data}-{model}-tuned/config.json"))["fit_info"]["search"]
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in search["best_params"].items())
        print(f"  {model} search: validation {search['best_value']:.4f} (defaults {search['default_value']:.4f}) on "
              f"{search['validation']['playlists']} playlists, {search['n_trials']} trials, {search['n_pruned']} pruned, "
              f"best trial {search['best_trial']}: {params}")
PY
cat tune_times.txt 2>/dev/null || true
