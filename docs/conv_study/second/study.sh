#!/bin/bash
# The second recipe study of docs/conv.md, run from a snapshot of the commit that wrote it (SNAP).
set -u
SNAP=${SNAP:?a snapshot of the package}; OUT=${OUT:?where the metrics go}; LOGS=${LOGS:-$OUT}
unset TINYGRAD_EDU_DATA TINYGRAD_EDU_NO_BUNDLED
export PYTHONPATH=$SNAP OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run() {  # name, then train options
  name=$1; shift
  /usr/bin/time -v nice -n 5 python -m tinygrad_edu train --model cnn "$@" --quiet --force \
      --metrics-out "$OUT/$name.json" > "$LOGS/$name.out" 2> "$LOGS/$name.err"
}
recipe() {  # the flags of candidate $1
  case $1 in
    D) echo "--channels 8,16 --lr 2e-3 --epochs 8";;
    E) echo "--channels 16,32 --lr 2e-3 --epochs 5";;
    F) echo "--channels 16,32 --lr 2e-3 --epochs 6";;
  esac
}
common="--hidden 128 --optimizer adam --schedule cosine --batch-size 128 --normalize standard --init torch"
cand() { run cand-$1-$2 $(recipe $1) $common --validation 10000 --seed $2; }
( cand F 100; cand D 100; cand E 101 ) &
( cand E 100; cand F 101; cand D 101 ) &
wait
# the rule: highest mean validation accuracy over seeds 100 and 101; within 0.10 pp of the best, the cheaper (D < E < F)
CHOICE=$(OUT=$OUT python - <<'PY'
import json, os
acc = {c: sum(json.load(open(f"{os.environ['OUT']}/cand-{c}-{s}.json"))["validation_accuracy"] for s in (100, 101)) / 2
       for c in "DEF"}
best = max(acc.values())
print(min((c for c in "DEF" if acc[c] >= best - 0.001), key="DEF".index))
PY
)
echo "$CHOICE" > "$OUT/choice.txt"
test_seed() { run test-$CHOICE-$1 $(recipe $CHOICE) $common --seed $1; }
( for s in 0 2 4 6 8; do test_seed $s; done ) &
( for s in 1 3 5 7 9; do test_seed $s; done ) &
wait
