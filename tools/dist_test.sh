#!/usr/bin/env bash
# Distributed testing with torchrun:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS...]
# GPUS processes on this node (one per GPU); each tests a share of the images
# and ZeroShotIoUMetric gathers the results, so the metrics are those of a
# single-process test. Without a GPU the processes run on the CPU with the
# gloo backend (tools/test.py sets that up).
# Multi-node: run it on every node with the same NNODES, MASTER_ADDR (the
# address of node 0) and PORT, and NODE_RANK = 0 .. NNODES-1. PYTHON picks
# the interpreter (default: python). See docs/reliability.md.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
