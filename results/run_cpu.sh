#!/usr/bin/env bash
# The committed real run (config/cpu-run.yaml), in the order the sessions' CPU time allowed: Music (everything),
# then Game's baselines for seed 0, then Game SASRec TP seed 0 (session 1); Game SASRec baselines seeds 1-2 and the
# TP schedule study (session 2); the rest of Game and MovieTweetings (session 3). Each snakemake call redoes
# nothing that finished.
set -euo pipefail
snakemake --cores 2 --configfile config/cpu-run.yaml --config 'datasets=["music"]'
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game-seed0.yaml
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game-sasrec-tp.yaml
# Session 2: Game SASRec baselines seeds 1-2, then TP trained to early stopping (results/schedule/README.md)
snakemake --cores 1 --configfile config/cpu-run.yaml config/cpu-run-game-sasrec-baselines.yaml --until evaluate
for b in sasrec caser gru4rec; do for s in 0 1 2; do echo "music $b $s"; done; done > /tmp/schedule.txt
for s in 0 1 2; do echo "music sasrec $s 1 0"; done >> /tmp/schedule.txt   # the k = 1, lambda = 0 control
echo "game sasrec 0" >> /tmp/schedule.txt
bash results/schedule/queue.sh 2 < /tmp/schedule.txt   # returns once the last run has started
while pgrep -f results/schedule/run.sh > /dev/null; do sleep 30; done
bash results/schedule/aggregate.sh
bash results/aggregate_finished.sh
# Session 3: the rest of Game (TP for every backbone, GRU4Rec/Caser baselines seeds 1-2), then MovieTweetings:
# SASRec (seeds 0-2 and the seed-0 k/lambda ablation) first, then GRU4Rec and Caser.
snakemake --cores 2 --configfile config/cpu-run.yaml --until evaluate
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-movietweetings-ablation.yaml --until evaluate
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-movietweetings.yaml --until evaluate
bash results/schedule/aggregate.sh
bash results/aggregate_finished.sh
# Session 4: ML1M SASRec, baseline and TP, seeds 0-2 (issue 3). Run as two single-core snakemake lanes with
# explicit targets (baseline seeds 2 and 0; TP seeds 0-2 then baseline seed 1) so that pairs finished early; the
# same jobs as:
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-ml1m-sasrec.yaml --until evaluate
bash results/aggregate_finished.sh
# Session 4: MovieTweetings under a stopping rule that survives the early plateau (results/stopping/README.md):
# SASRec, both methods, seeds 0-2 (run alongside the ML1M jobs, two to four processes on the two cores)
for m in baseline tp; do for s in 0 1 2; do bash results/stopping/run.sh $m movietweetings sasrec $s; done; done
bash results/stopping/aggregate.sh
bash results/aggregate_finished.sh
# Session 5: ML1M GRU4Rec, baseline and TP, seeds 0-2, as two single-core lanes (TP seeds 0-2; baselines 0-2):
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-ml1m-gru4rec.yaml --until evaluate
# Sessions 5 and 15: MovieTweetings SASRec, TP with P = 64 vectorised chains under the minimum-epochs rule (seeds 0-2;
# re-run in session 15 with the inputs cut to each group's longest history, which changes P > 1 runs' numbers)
for s in 0 1 2; do bash results/stopping/run.sh tp movietweetings sasrec $s 64; done
bash results/stopping/aggregate.sh 64
# Session 5: the MovieTweetings SASRec ablations (Figures 6-7) for seeds 1 and 2 (seed 0: session 3)
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-movietweetings-ablation.yaml --until evaluate
bash results/aggregate_finished.sh
# Session 6: MovieTweetings ablations (Figures 6-7) for GRU4Rec and Caser, seed 0, in one single-core lane; ML1M
# Caser in another (TP seeds 0-2, then the baselines, which resume from their last validation across sessions).
snakemake --cores 1 --configfile config/cpu-run.yaml config/cpu-run-movietweetings-ablation-gru4rec-caser.yaml --until evaluate
snakemake --cores 1 --configfile config/cpu-run.yaml config/cpu-run-ml1m-caser.yaml --until evaluate
bash results/aggregate_finished.sh
# Session 7: ML1M Caser baselines seeds 0-2, from the start (session 6's partial runs and their resume.pt were lost
# with its machine), then the MovieTweetings GRU4Rec/Caser ablations for seeds 1-2 (the overlay now asks seeds 0-2),
# as two single-core lanes; aggregate_finished.sh merges the new runs into the committed tables (tp aggregate --merge).
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-ml1m-caser.yaml --until evaluate
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-movietweetings-ablation-gru4rec-caser.yaml --until evaluate
bash results/aggregate_finished.sh
# Session 7: ML1M SASRec ablation (k 1 and 5 at lambda 0.1, lambda 0 and 1 at k 2), seeds 0-2, two single-core lanes
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-ml1m-ablation-sasrec.yaml --until evaluate
bash results/aggregate_finished.sh
# Session 8: MovieTweetings seeds 3-9 (the overlay now asks seeds 0-9), all three backbones, both methods, as two
# single-core lanes with explicit targets (each seed's six runs in turn); then GRU4Rec on MovieTweetings under the
# minimum-epochs rule (results/stopping/, seeds 0-2, then 3-5); then the rest of the ML1M SASRec ablation (k 3, 4
# and lambda 0.01, 10; seeds 0-2), all as explicit targets/commands on two single-core lanes.
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-movietweetings.yaml --until evaluate
for s in 0 1 2 3 4 5; do for m in tp baseline; do bash results/stopping/run.sh $m movietweetings gru4rec $s; done; done
bash results/stopping/aggregate.sh
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-ml1m-ablation-sasrec.yaml --until evaluate
bash results/aggregate_finished.sh
# Session 9: MovieTweetings GRU4Rec with a long patience for both methods (results/patience/README.md: baselines
# seeds 0-9, then TP seeds 0-2); Music seeds 3-9 (the overlay asks seeds 0-9), all three backbones, both methods,
# as explicit targets on two single-core lanes; Music GRU4Rec under the long-patience rule (baselines seeds 0-2,
# then TP seeds 0-2).
for s in 0 1 2 3 4 5 6 7 8 9; do bash results/patience/run.sh baseline movietweetings gru4rec $s; done
for s in 0 1 2; do bash results/patience/run.sh tp movietweetings gru4rec $s; done
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-music.yaml --until evaluate
for s in 0 1 2; do for m in baseline tp; do bash results/patience/run.sh $m music gru4rec $s; done; done
bash results/patience/aggregate.sh
bash results/aggregate_finished.sh
# Session 10: the same long-patience rule on Music SASRec (both methods, seeds 0-2) and Caser (baselines seeds 0-2,
# TP seed 0), two single-core lanes; then Music Caser TP seed 1 and one Game SASRec baseline (seed 0) beside them.
for s in 0 1 2; do for m in baseline tp; do bash results/patience/run.sh $m music sasrec $s; done; done
for s in 0 1 2; do bash results/patience/run.sh baseline music caser $s; done; for s in 0 1; do bash results/patience/run.sh tp music caser $s; done
bash results/patience/run.sh baseline game sasrec 0
bash results/patience/aggregate.sh
bash results/aggregate_finished.sh
# Session 11: Game seeds 3 onwards (overlay config/cpu-run-game.yaml, seeds 0-9; the seeds that ran are those in
# results/aggregate/runs.csv), all three backbones, both methods, as explicit targets on two single-core lanes,
# each seed's six runs in turn; Music Caser TP seed 2 under the long-patience rule between seeds 5 and 6.
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game.yaml --until evaluate
bash results/patience/run.sh tp music caser 2
bash results/patience/aggregate.sh
bash results/aggregate_finished.sh
# Session 12: Game seeds 8-9 (same overlay, same way: two single-core lanes, explicit targets), so Game has seeds 0-9.
# Then TP trained to early stopping on Game GRU4Rec seeds 3-6 (results/schedule/run.sh game gru4rec SEED) was started;
# none finished in session 12 (they resumed from resume.pt and finished in session 13).
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game.yaml --until evaluate
bash results/aggregate_finished.sh
# Session 13: TP trained to early stopping on Game (two single-core lanes, a third at the end): GRU4Rec seeds 0 and
# 3-9, SASRec seeds 0-2 (GRU4Rec seeds 1-2 were not run). The baselines of those seeds 0-2 were run again (same
# seeds, config and machine type as sessions 1-2), because the schedule aggregate pairs TP with the baseline run
# folders found on the machine; they reproduced the committed numbers (see results/schedule/README.md).
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game.yaml -- \
  results/runs/game/gru4rec/baseline/seed0/metrics.json results/runs/game/sasrec/baseline/seed{0,1,2}/metrics.json
for s in 0 3 4 5 6 7 8 9; do bash results/schedule/run.sh game gru4rec $s; done
for s in 0 1 2; do bash results/schedule/run.sh game sasrec $s; done
bash results/schedule/aggregate.sh
bash results/aggregate_finished.sh
# Session 14: Game GRU4Rec TP to early stopping, seeds 1-2 (started in session 13 and resumed here from resume.pt; two
# single-core lanes). Their baselines had been re-run in session 13 and match the committed numbers bit for bit.
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game.yaml -- \
  results/runs/game/gru4rec/baseline/seed{1,2}/metrics.json
for s in 1 2; do bash results/schedule/run.sh game gru4rec $s; done
bash results/schedule/aggregate.sh
bash results/aggregate_finished.sh
# Session 14, then: Game SASRec TP to early stopping, seeds 3-8 (two single-core lanes; baselines from results/runs/).
for s in 3 4 5 6 7 8; do bash results/schedule/run.sh game sasrec $s; done
bash results/schedule/aggregate.sh
bash results/aggregate_finished.sh
# Session 15: Game SASRec TP to early stopping, seed 9 (one single-core lane; the baseline from the committed aggregate).
bash results/schedule/run.sh game sasrec 9
bash results/schedule/aggregate.sh
bash results/aggregate_finished.sh
# Session 16: MovieTweetings SASRec TP with P = 64 re-run with session 16's vectorised path (seeds 0-2; session 15
# had re-run them with its own), and with P = 256 (new; the baselines' rows come from results/stopping/aggregate).
# Two single-core lanes.
for P in 64 256; do for s in 0 1 2; do bash results/stopping/run.sh tp movietweetings sasrec $s $P; done; done
bash results/stopping/aggregate.sh 64
bash results/stopping/aggregate.sh 256
bash results/aggregate_finished.sh
