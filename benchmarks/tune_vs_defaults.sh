#!/usr/bin/env bash
# `segue tune` against the defaults, on generated data (issue 16). Usage:
#   benchmarks/tune_vs_defaults.sh WORKDIR [TRIALS]
# Two stores from the generator's default (realistic) profile, whose world holds 2.6M songs: A, 5,000
# playlists; B, sparser still, 2,000 playlists (each song in fewer playlists). Each is split like the
# challenge; als and cooccur are tuned on SPLIT/train only (segue tune carves its own validation split out
# of it), the defaults are trained on the same SPLIT/train, and all four models are scored on the split's
# own challenge set.
# SEGUE (default `segue`) and PYTHON (default `python`) name the commands to run.
set -euo pipefail
work=${1:?usage: $0 WORKDIR [TRIALS]}
trials=${2:-12}
segue=${SEGUE:-segue}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$work"
cd "$work"
run() { echo "+ $*" >&2; $segue "$@"; }

make_data() {  # name playlists tracks_approx seed per_category
  [ -d "split_$1" ] && return
  run synth -n "$2" ${3:+--tracks-approx "$3"} --seed "$4" --out "raw_$1" --no-progress
  run ingest "raw_$1" --out "store_$1" --no-progress --workers 1
  run split "store_$1" --out "split_$1" --per-category "$5"
}
make_data a 5000 "" 0 50
make_data b 2000 "" 1 20

for data in a b; do
  for model in cooccur als; do
    run train "$model" --store "split_$data/train" --out "$data-$model-default" --no-progress
    start=$(date +%s)
    run tune "$model" --store "split_$data/train" --out "$data-$model-tuned" --trials "$trials" --no-progress
    echo "tune $model on $data: $(( $(date +%s) - start )) s wall" >&2
  done
  run evaluate "$data-cooccur-default" "$data-cooccur-tuned" "$data-als-default" "$data-als-tuned" \
    --split "split_$data" --no-progress --json "evaluate_$data.json"
done

# One table: the split's own challenge set (tuned on SPLIT/train only), and what each search chose.
${PYTHON:-python} - <<'PY'
import json
for data in "ab":
    results = json.load(open(f"evaluate_{data}.json"))
    for key, summary in results.items():
        overall, low_high = summary["overall"], summary["ci95"]["r_precision"]
        line = (f"{key:20s} R-precision {overall['r_precision']:.4f} [{low_high[0]:.4f}, {low_high[1]:.4f}]  "
                f"NDCG {overall['ndcg']:.4f}  clicks {overall['clicks']:.2f}  (n={overall['n']})")
        if key.endswith("tuned"):
            search = json.load(open(f"{key}/config.json"))["fit_info"]["search"]
            params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in search["best_params"].items())
            line += (f"\n{'':20s} validation {search['best_value']:.4f} (defaults {search['default_value']:.4f}), "
                     f"{search['n_trials']} trials, {search['n_pruned']} pruned: {params}")
        print(line)
PY
