#!/usr/bin/env bash
# MovieTweetings under a stopping rule that survives the early validation plateau (issue 4's open caveat).
# In the main CPU run (config/cpu-run.yaml) two of three MovieTweetings SASRec baselines stopped at epochs 24-26
# on a best epoch of 2-4, while seed 1 broke out of the same plateau at epochs 28-36 and went on to a best epoch
# of 104; one TP run stopped the same way (best epoch 2). Here BOTH methods train at least 60 epochs (no early stop
# before), at most 200, and stop after 20 epochs without a better validation NDCG@10: the baseline validates every
# 2 epochs (patience 10), TP every epoch (patience 20) and is not capped at 20 epochs. Everything else is the main
# run's setting (TP: k 2, lambda 0.1, alpha 0.1, beta 1e-3, P 1; one torch thread).
# Optional 5th argument P (TP only): P > 1 parallel chains, vectorised (batched Reptile, a harness extension, not the
# paper's algorithm); such runs go to results/stopping/runs-P{P}/ so that they never mix with the P = 1 runs.
# Usage: bash results/stopping/run.sh METHOD DATASET BACKBONE SEED [P]   (after the workflow prepared results/data/DATASET)
set -euo pipefail
m=$1 d=$2 b=$3 s=$4 P=${5:-1}
root=results/stopping/runs
if [ "$m" = tp ]; then spec=tp/k2_lam0.1; rule="--set train.eval_every=1 --set train.patience=20 --set tp.k=2 --set tp.lam=0.1 --set tp.P=$P"
else spec=baseline; rule="--set train.eval_every=2 --set train.patience=10"; fi
if [ "$P" != 1 ]; then
  [ "$m" = tp ] || { echo "run.sh: P applies to tp only, got METHOD=$m P=$P" >&2; exit 2; }
  root=results/stopping/runs-P$P
fi
bash results/train_eval.sh "$root/$d/$b/$spec/seed$s" "$d" "$b" "$m" "$s" \
  --set train.min_epochs=60 --set train.max_epochs=200 $rule
