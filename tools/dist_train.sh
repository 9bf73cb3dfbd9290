#!/usr/bin/env bash
# Distributed training with torchrun:
#   tools/dist_train.sh CONFIG GPUS [ARGS...]
# GPUS processes on this node (one per GPU). Without a GPU the processes run
# on the CPU with the gloo backend (tools/train.py sets that up).
# Multi-node: run it on every node with the same NNODES, MASTER_ADDR (the
# address of node 0) and PORT, and NODE_RANK = 0 .. NNODES-1. PYTHON picks
# the interpreter (default: python). See docs/reliability.md.
CONFIG=$1
GPUS=$2
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
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
