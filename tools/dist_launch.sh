#!/usr/bin/env bash
# tools/dist_launch.sh SCRIPT NPROC [SCRIPT args]: the torchrun launch
# shared by dist_train.sh and dist_test.sh. One node: NPROC processes (one
# per GPU; without GPUs, CPU processes on gloo). Several nodes: run it on
# each with NNODES, NODE_RANK, MASTER_ADDR (and PORT) set.
set -e
SCRIPT=$1
NPROC=$2
PYTHON=${PYTHON:-python}

case "$NPROC" in
    '' | *[!0-9]* | 0 | 0*)
        echo "error: NPROC, the number of processes, must be a positive" \
            "integer; got '$NPROC'" >&2
        exit 2 ;;
esac

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" \
    --master_port="${PORT:-29500}" \
    "$(dirname "$0")/$SCRIPT" --launcher pytorch "${@:3}"
