#!/bin/bash
# The schedule amended a second time at 05:37 UTC, before any result (see docs/conv.md): the test runs of seeds 0-2
# start now for both A and B (provisional, 6 runs), beside A, B and C's validation runs; the rule over A, B and C
# decides which test runs are used. Same snapshot of the package (commit b2baa91), same commands as study.sh.
SNAP=/tmp/conv_scratch/snap_b2baa91
OUT=/work/wt/conv/docs/conv_study
export PYTHONPATH=$SNAP TINYGRAD_EDU_DATA=/work/shared/data/mnist OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run() {  # name, then train options
  name=$1; shift
  /usr/bin/time -v nice -n 10 python -m tinygrad_edu train --model cnn "$@" --quiet --force --metrics-out $OUT/$name.json \
      > /tmp/conv_scratch/$name.out 2> /tmp/conv_scratch/$name.err
}
flags() {
  case $1 in
    A) echo "--channels 8,16 --lr 1e-3 --epochs 4";;
    B) echo "--channels 8,16 --lr 2e-3 --epochs 4";;
    C) echo "--channels 16,32 --lr 1e-3 --epochs 3";;
  esac
}
test_seed() {  # candidate, seed
  run test-$1-$2 $(flags $1) --hidden 128 --optimizer adam --schedule cosine --batch-size 128 --normalize standard --seed $2
}
for c in A B; do for s in 0 1 2; do test_seed $c $s & done; done
while [ ! -s $OUT/cand-A.json ] || [ ! -s $OUT/cand-B.json ] || [ ! -s $OUT/cand-C.json ]; do sleep 10; done
python - > $OUT/choice.txt <<'PY'
import json
acc = {c: json.load(open(f"/work/wt/conv/docs/conv_study/cand-{c}.json"))["validation_accuracy"] for c in "ABC"}
best, cost = max(acc.values()), {"A": 0, "B": 0, "C": 1}
print(min((c for c in acc if acc[c] >= best - 0.001), key=lambda c: (cost[c], -acc[c])))
PY
wait
