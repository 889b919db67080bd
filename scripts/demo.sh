#!/usr/bin/env bash
# The main job end to end on built-in synthetic data: generate, ingest, stats, split, train, evaluate, inspect.
# Run through `make demo` (which installs segue into .venv first). Output goes to demo-data/.
set -euo pipefail
D=${DEMO_DIR:-demo-data}
# 10,000 playlists, 100 per category: a size that keeps the whole demo within about 3 minutes on 2 cores
N=${DEMO_PLAYLISTS:-10000}
PER_CATEGORY=${DEMO_PER_CATEGORY:-100}
rm -rf "$D"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Generate $N synthetic playlists in the official slice format"
segue synth --playlists "$N" --out "$D/raw" --seed 7

step "2. Ingest the slices into a store"
segue ingest "$D/raw" --out "$D/store"

step "3. Dataset statistics"
segue stats "$D/store" --top 10 --plot "$D/stats.png"

step "4. Challenge-style split: 10 categories x $PER_CATEGORY playlists"
segue split "$D/store" --out "$D/split" --per-category "$PER_CATEGORY" --seed 7

step "5. Train models on the split's training playlists (one title model is every model's fallback)"
# One line per model: its name, then its settings. The neural models train under an example budget here
# (one round over the first 3,000 playlists: one (prefix, later song) example per playlist for meanvar, one
# window per playlist for sequential), and the two-stage rerank learns its ranker from one fold of 1,000
# held-out training playlists (two folds of 3,000 by default; the second fold costs the demo a minute of
# candidate fitting): the same code path as a full training, fewer examples.
MODELS=(
  "popular"
  "title"
  "cooccur --set fallback=$D/models/title"
  "als --set fallback=$D/models/title"
  "meanvar --set fallback=$D/models/title --set rounds=1 --set pairs_per_playlist=1 --set files=3"
  "sequential --set fallback=$D/models/title --set rounds=1 --set files=3"
  "rerank --set ranker_playlists=1000 --set ranker_folds=1"
)
MODEL_DIRS=()
for line in "${MODELS[@]}"; do
  read -r -a args <<< "$line"
  segue train "${args[0]}" --store "$D/split/train" --out "$D/models/${args[0]}" "${args[@]:1}"
  MODEL_DIRS+=("$D/models/${args[0]}")
done

step "6. Evaluate by the RecSys Challenge 2018 rules"
segue evaluate "${MODEL_DIRS[@]}" --split "$D/split" --report "$D/report"

step "7. The seed's show_recommendations for a country playlist"
segue show "$D/models/meanvar" --title-contains country --store "$D/store"

step "8. The seed's genre check, automated"
segue genres "$D"/models/meanvar "$D"/models/cooccur --store "$D/split/train" --report "$D/genres"

step "9. A submission for the held-out challenge set, checked like the official checker"
segue submit "$D/models/als" --challenge "$D/split/challenge_set.json" --out "$D/submission.csv.gz" \
  --team segue-demo --email demo@example.org
segue verify "$D/submission.csv.gz" --challenge "$D/split/challenge_set.json"

printf '\nDone. Report: %s/report.md, plots: %s/report.png %s/stats.png\n' "$D" "$D" "$D"
