#!/bin/sh
# Comparison models for the report: the bundle's recipe (recipes/avmnist-qmf.toml) with ONE thing changed.
# Usage: sh scripts/train_comparisons.sh [SEEDS] [VARIANTS]
#   short schedule (EPOCHS x SAMPLES, default 4 x 10000; the report's short rows used 3 x 8000)
#       -> work/models/<variant>-s<seed>.safetensors
#   FULL=1: the recipe's own schedule, i.e. the bundle's (10 epochs x 12,000 pairs)
#       -> work/models/full/<variant>-s<seed>.safetensors (the report's "-full" rows)
# Files are git-ignored; existing files are kept. One thread per process: run two invocations in parallel on 2 cores.
SEEDS=${1:-"0"}
VARIANTS=${2:-"qmf-paper late qmf-current qmf-l0 qmf-history"}
EPOCHS=${EPOCHS:-4}
SAMPLES=${SAMPLES:-10000}
PY=.venv/bin/python
if [ -n "$FULL" ]; then dir=work/models/full; sched=""; tag="-full"
else dir=work/models; sched="--epochs $EPOCHS --samples-per-epoch $SAMPLES"; tag=""; fi
mkdir -p $dir work/logs
for seed in $SEEDS; do
  for v in $VARIANTS; do
    out=$dir/$v-s$seed.safetensors
    [ -f "$out" ] && continue
    case $v in
      qmf-paper)   extra="" ;;                                          # the bundle's variant
      late)        extra="--fusion-loss late --rank-weight 0" ;;        # static late fusion
      qmf-current) extra="--ranking-margin official" ;;                 # current target, official margin
      qmf-l0)      extra="--rank-weight 0" ;;                           # QMF without the ranking term
      qmf-history) extra="--ranking-target history --ranking-margin official" ;;  # the official recipe
    esac
    echo "$(date +%T) $v$tag seed $seed" >> work/logs/comparisons.log
    $PY scripts/train_bundled.py --quiet --threads 1 --seed $seed $sched \
        --name "avmnist-$v$tag-s$seed" --out $out $extra >> work/logs/comparisons.log 2>&1
  done
done
