#!/usr/bin/env bash
# `segue tune` against the defaults, on generated data (issue 16). Usage:
#   benchmarks/tune_vs_defaults.sh WORKDIR [TRIALS]
# Two stores from the generator's default (realistic) profile, whose world holds 2.6M songs: A, 5,000
# playlists; B, far sparser, 2,000 playlists (each song in even fewer playlists). Each is split like the challenge; als and cooccur are tuned on SPLIT/train only
# (segue tune carves its own validation split out of it), the defaults are trained on the same SPLIT/train,
# and all four models are scored on the split's own challenge set.
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
