#!/usr/bin/env bash
# A long patience for both methods: does the MovieTweetings GRU4Rec baseline, which stops on an early validation
# plateau, reach TP's level when it may train on, and does TP gain as much from the same patience?
# (results/patience/README.md.) Under the minimum-epochs rule of results/stopping/ (at least 60 epochs, stop after
# 20 epochs without a better validation NDCG@10) one baseline of six (seed 1) left its plateau at epoch ~100 and
# drew level with TP. Here both methods train at least 60 epochs, at most 400, and stop only after 100 epochs
# without a better validation NDCG@10: the baseline validates every 2 epochs (patience 50 validations), TP every
# epoch (patience 100). Everything else is the main run's (TP: k 2, lambda 0.1, alpha 0.1, beta 1e-3, P 1; one
# torch thread). The baseline's rule was set before any run under it; running TP under the same rule was decided
# after the first two baselines had finished (results/patience/README.md).
# Usage: bash results/patience/run.sh METHOD DATASET BACKBONE SEED   (after the workflow prepared results/data/DATASET)
set -euo pipefail
m=$1 d=$2 b=$3 s=$4
if [ "$m" = tp ]; then spec=tp/k2_lam0.1; rule="--set train.eval_every=1 --set train.patience=100 --set tp.k=2 --set tp.lam=0.1 --set tp.P=1"
elif [ "$m" = baseline ]; then spec=baseline; rule="--set train.eval_every=2 --set train.patience=50"
else echo "run.sh: METHOD must be baseline or tp, got '$m'" >&2; exit 2; fi
bash results/train_eval.sh "results/patience/runs/$d/$b/$spec/seed$s" "$d" "$b" "$m" "$s" \
  --set train.min_epochs=60 --set train.max_epochs=400 $rule
