#!/bin/bash
# The schedule amended at 05:35 UTC, before any result (see docs/conv.md): A and B already running (study.sh), C
# starts now beside them; the A/B winner's test seeds start as soon as A and B are in (provisional); the full
# rule decides once C is in. Same snapshot of the package (commit b2baa91), same commands as study.sh.
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
choose() {  # the rule of docs/conv.md over the candidates given
  python - "$@" <<'PY'
import json, sys
acc = {c: json.load(open(f"/work/wt/conv/docs/conv_study/cand-{c}.json"))["validation_accuracy"] for c in sys.argv[1:]}
best, cost = max(acc.values()), {"A": 0, "B": 0, "C": 1}
print(min((c for c in acc if acc[c] >= best - 0.001), key=lambda c: (cost[c], -acc[c])))
PY
}
run cand-C $(flags C) --hidden 128 --optimizer adam --schedule cosine --batch-size 128 --normalize standard \
    --validation 10000 --seed 100 &
while [ ! -s $OUT/cand-A.json ] || [ ! -s $OUT/cand-B.json ]; do sleep 10; done
P=$(choose A B); echo "$P" > $OUT/choice-AB.txt
for s in 0 1 2; do test_seed $P $s & done
while [ ! -s $OUT/cand-C.json ]; do sleep 10; done
CHOICE=$(choose A B C); echo "$CHOICE" > $OUT/choice.txt
wait
if [ "$CHOICE" = "$P" ]; then
  ( for s in 3 5 7 9; do test_seed $P $s; done ) & ( for s in 4 6 8; do test_seed $P $s; done ) &
else
  for s in 0 1 2; do test_seed $CHOICE $s & done
fi
wait
