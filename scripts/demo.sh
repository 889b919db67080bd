#!/usr/bin/env bash
# The main job end to end on built-in synthetic data: generate, ingest, stats, split, train, evaluate, inspect.
# Run through `make demo` (which installs segue into .venv first). Output goes to demo-data/.
set -euo pipefail
D=${DEMO_DIR:-demo-data}
N=${DEMO_PLAYLISTS:-20000}
PER_CATEGORY=${DEMO_PER_CATEGORY:-200}
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

step "5. Train models on the split's training playlists"
for model in popular title cooccur als meanvar rerank; do
  segue train "$model" --store "$D/split/train" --out "$D/models/$model"
done

step "6. Evaluate by the RecSys Challenge 2018 rules"
segue evaluate "$D"/models/popular "$D"/models/title "$D"/models/cooccur "$D"/models/als "$D"/models/meanvar \
  "$D"/models/rerank --split "$D/split" --report "$D/report"

step "7. The seed's show_recommendations for a country playlist"
segue show "$D/models/meanvar" --title-contains country --store "$D/store"

step "8. The seed's genre check, automated"
segue genres "$D"/models/meanvar "$D"/models/cooccur --store "$D/split/train" --report "$D/genres"

step "9. A submission for the held-out challenge set, checked like the official checker"
segue submit "$D/models/als" --challenge "$D/split/challenge_set.json" --out "$D/submission.csv.gz" \
  --team segue-demo --email demo@example.org
segue verify "$D/submission.csv.gz" --challenge "$D/split/challenge_set.json"

printf '\nDone. Report: %s/report.md, plots: %s/report.png %s/stats.png\n' "$D" "$D" "$D"
