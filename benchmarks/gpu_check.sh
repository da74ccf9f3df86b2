#!/usr/bin/env bash
# The prepared GPU check, for a machine with a GPU: the CUDA determinism tests, the speed table on the GPU and a
# real run's cost, in one short call (no GPU has run it yet). From the repository root:
#
#   bash benchmarks/gpu_check.sh            # writes to $OUT (the device tool's folder), else ./gpu-check
#
# It needs the prepared datasets (`tp prepare`, results/data/ml1m and results/data/game: carry results/data,
# about 3 MB) and a python3 with torch, numpy, pandas, scipy, pyyaml, tqdm and pytest (tplib is read from this
# checkout through PYTHONPATH; nothing is installed). Stages, each under its own time limit, in order of value:
#   1. the determinism tests on CUDA (same seed, same GPU, same numbers: tests/test_determinism.py)
#   2. benchmarks/speed.py on the GPU: baseline and TP epochs (P = 1, 64, 256) and full-ranking evaluation,
#      ML1M and Game, all three backbones -> speed-gpu.csv (input of benchmarks/grid_cost.py --speed-first)
#   3. a real run: the ML1M SASRec baseline (seed 0, default config) on the GPU, for as long as
#      its limit allows; train.log has every validation's time stamp, train_log.csv (if it ends) every epoch's
#      seconds
# Every stage's exit status and wall time go to stages.txt. On a CPU (DEVICE=cpu, with DATASETS, RUN_DATA and
# the limits made small) the same script checks its own plumbing: tests/test_benchmarks.py does that.
set -uo pipefail
OUT=${OUT:-gpu-check}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
DATASETS=${DATASETS:-results/data/ml1m results/data/game}
RUN_DATA=${RUN_DATA:-results/data/ml1m}
LIMIT_TESTS=${LIMIT_TESTS:-150}
LIMIT_SPEED=${LIMIT_SPEED:-200}
LIMIT_RUN=${LIMIT_RUN:-150}
RUN_EPOCHS=${RUN_EPOCHS:-200}
SPEED_ARGS=${SPEED_ARGS:---tp-P 64 256 --fraction 0.25}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
run_dir=$(mktemp -d)

stage() {  # stage NAME LIMIT_S COMMAND...: run it under `timeout`, its output in NAME.log, its status in stages.txt
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "$name: rc $rc$([ $rc = 124 ] && echo ' (time limit)') in $(( $(date +%s) - start )) s of ${limit} s: $*" \
    >> "$OUT/stages.txt"
}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__,
            'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
  nproc
} > "$OUT/stages.txt" 2>&1

test_filter=$([ "$DEVICE" = cpu ] && echo "cpu and sasrec" || echo "cuda")
stage tests "$LIMIT_TESTS" "$PY" -m pytest -q -p no:cacheprovider tests/test_determinism.py -k "$test_filter"
# shellcheck disable=SC2086  # DATASETS and SPEED_ARGS are word lists
stage speed "$LIMIT_SPEED" "$PY" benchmarks/speed.py --device "$DEVICE" --threads 4 --data $DATASETS $SPEED_ARGS \
  --csv "$OUT/speed-gpu.csv"
stage train "$LIMIT_RUN" "$PY" -m tplib.cli train --data "$RUN_DATA" --backbone sasrec --method baseline --seed 0 \
  --out "$run_dir/run" --set train.device="$DEVICE" --set train.progress=false --set train.max_epochs="$RUN_EPOCHS"
# train_log.csv is written when the run ends; a run stopped by its limit has its epochs, timed, in train.log
cp "$run_dir/run/train_log.csv" "$OUT/train_log.csv" 2>/dev/null || echo "train: unfinished (epochs in train.log)" \
  >> "$OUT/stages.txt"
rm -rf "$run_dir"
cat "$OUT/stages.txt"
cat "$OUT/speed.log"
