#!/usr/bin/env bash
# Create (or complete) the project's virtual environment with the tested OpenMMLab stack.
#
#   bash tools/install_env.sh            # venv in .venv/ next to this repo
#   VENV=/path/to/venv bash tools/install_env.sh
#
# Safe to re-run: every step checks what is already there and skips it.
# A torch/torchvision already present in the venv (for example a CUDA build the
# user installed) is kept; otherwise the tested pair torch 2.14.1 / torchvision
# 0.29.1 is installed. mmcv 2.1.0 is published as source only: it is compiled
# once with its CPU ops and the wheel is kept in a cache keyed by the torch and
# Python versions, so a later venv on the same machine installs it in seconds
# and a wheel built against one torch never lands beside another.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$repo/.venv}
base_python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
mmcv_version=2.1.0
cache_root=${MMSPECTRAL_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmspectral/wheels}

say() { printf '[install] %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment $venv"
  if [ "${MMSPECTRAL_SYSTEM_SITE:-0}" = 1 ]; then
    "$base_python" -m venv --system-site-packages "$venv"
  else
    "$base_python" -m venv "$venv"
  fi
fi
py="$venv/bin/python"
# pip's config on some machines names find-links folders that do not exist;
# its warnings about them are noise, everything else is shown.
pip() {
  "$py" -m pip --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if "$py" -c 'import torch, torchvision' 2>/dev/null; then
  say "keeping installed $("$py" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)')"
else
  say "installing $torch_spec (first run: several minutes)"
  # shellcheck disable=SC2086
  pip install -q $torch_spec
fi

say "build tools for mmcv"
pip install -q -r "$repo/requirements/build.txt"
pip install -q mmengine==0.10.7

mmcv_ok() {
  "$py" - <<EOF 2>/dev/null
import mmcv
from mmcv.ops import nms, roi_align  # noqa: F401  compiled CPU ops
assert mmcv.__version__ == '$mmcv_version', mmcv.__version__
EOF
}

if mmcv_ok; then
  say "mmcv $mmcv_version with ops already installed"
else
  key=$("$py" -c 'import sys, torch; print(f"torch-{torch.__version__}-cp{sys.version_info.major}{sys.version_info.minor}")')
  cache="$cache_root/$key"
  wheel=$(ls "$cache"/mmcv-"$mmcv_version"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    say "compiling mmcv $mmcv_version with CPU ops against $key (about 12 minutes on 2 cores)"
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # mmcv's setup.py pins -std=c++17, but torch >= 2.10 headers need C++20: a
    # compiler wrapper appends -std=c++20, and the last -std flag wins.
    printf '#!/bin/sh\nexec %s "$@" -std=c++20\n' "${CXX:-c++}" > "$tmp/cxx20"
    chmod +x "$tmp/cxx20"
    CXX="$tmp/cxx20" MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-2} \
      pip wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$tmp" "mmcv==$mmcv_version"
    mv "$tmp"/mmcv-*.whl "$cache"/
    rm -r "$tmp"
    wheel=$(ls "$cache"/mmcv-"$mmcv_version"-*.whl | head -n 1)
  else
    say "using cached $wheel"
  fi
  pip install -q --no-deps --force-reinstall "$wheel"
  mmcv_ok || { echo "mmcv $mmcv_version was installed but its ops do not import" >&2; exit 1; }
fi

say "OpenMMLab libraries, runtime, test and deployment requirements"
# deploy.txt: the tests export to ONNX and run ONNX Runtime / OpenVINO
pip install -q -r "$repo/requirements/mminstall.txt" -r "$repo/requirements/runtime.txt" \
  -r "$repo/requirements/tests.txt" -r "$repo/requirements/deploy.txt"
pip install -q --no-deps --no-build-isolation -e "$repo"

"$py" - <<'EOF'
import mmcv, mmdet, mmengine, mmpretrain, mmseg, torch
import mmspectral
print('[install] ready:', ', '.join(f'{m.__name__} {m.__version__}' for m in
      (torch, mmengine, mmcv, mmdet, mmseg, mmpretrain, mmspectral)))
EOF
