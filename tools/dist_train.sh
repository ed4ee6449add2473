#!/usr/bin/env bash
# tools/dist_train.sh CONFIG NPROC [train.py args]
# NPROC processes on this node (see dist_launch.sh for several nodes).
set -e
exec "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
