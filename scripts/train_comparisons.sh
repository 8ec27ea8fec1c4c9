#!/bin/sh
# Comparison models for the report: the bundle's recipe (recipes/avmnist-qmf.toml) with ONE thing changed,
# all on the same shorter schedule (EPOCHS x SAMPLES). Usage: sh scripts/train_comparisons.sh [SEEDS] [VARIANTS]
# Writes work/models/<variant>-s<seed>.safetensors (git-ignored). Existing files are kept.
SEEDS=${1:-"0"}
VARIANTS=${2:-"qmf-paper late qmf-current qmf-l0 qmf-history"}
EPOCHS=${EPOCHS:-4}
SAMPLES=${SAMPLES:-10000}
PY=.venv/bin/python
mkdir -p work/models work/logs
for seed in $SEEDS; do
  for v in $VARIANTS; do
    out=work/models/$v-s$seed.safetensors
    [ -f "$out" ] && continue
    case $v in
      qmf-paper)   extra="" ;;                                          # the bundle's variant
      late)        extra="--fusion-loss late --rank-weight 0" ;;        # static late fusion
      qmf-current) extra="--ranking-margin official" ;;                 # current target, official margin
      qmf-l0)      extra="--rank-weight 0" ;;                           # QMF without the ranking term
      qmf-history) extra="--ranking-target history --ranking-margin official" ;;  # the official recipe
    esac
    echo "$(date +%T) $v seed $seed" >> work/logs/comparisons.log
    $PY scripts/train_bundled.py --quiet --seed $seed --epochs $EPOCHS --samples-per-epoch $SAMPLES \
        --name "avmnist-$v-s$seed" --out $out $extra >> work/logs/comparisons.log 2>&1
  done
done
