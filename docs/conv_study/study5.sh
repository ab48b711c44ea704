#!/bin/bash
# Seeds 6-7 of the chosen recipe B, started at 06:32 UTC when seeds 3-5 were done (stopped unfinished if
# not done by 06:49). Same snapshot of the package (commit b2baa91), same command as study3.sh's test runs.
SNAP=/tmp/conv_scratch/snap_b2baa91
OUT=/work/wt/conv/docs/conv_study
export PYTHONPATH=$SNAP TINYGRAD_EDU_DATA=/work/shared/data/mnist OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for s in 6 7; do
  /usr/bin/time -v nice -n 10 python -m tinygrad_edu train --model cnn --channels 8,16 --lr 2e-3 --epochs 4 --hidden 128 \
      --optimizer adam --schedule cosine --batch-size 128 --normalize standard --seed $s --quiet --force \
      --metrics-out $OUT/test-B-$s.json > /tmp/conv_scratch/test-B-$s.out 2> /tmp/conv_scratch/test-B-$s.err &
done
wait
