#!/usr/bin/env bash
# Testing on a Slurm cluster (mmseg's tools/slurm_test.sh):
#   [GPUS=4 GPUS_PER_NODE=4] tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]
# srun starts GPUS tasks, GPUS_PER_NODE per node, one GPU each; each tests a
# share of the images and ZeroShotIoUMetric gathers the results. MMEngine's
# slurm launcher reads the rank and the master node from Slurm's variables
# (MASTER_PORT, default 29500, picks the port). GPUs are required.
# CPUS_PER_TASK, SRUN_ARGS and PYTHON (default: python) can be set too.
# See docs/reliability.md.
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

# shellcheck disable=SC2086  # SRUN_ARGS holds several words
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher slurm "${@:5}"
