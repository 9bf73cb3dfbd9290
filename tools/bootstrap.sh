#!/usr/bin/env bash
# Create (or update) the project-local virtual environment in .venv with the
# pinned, known-good dependency set. Idempotent: a stamp keyed on the
# requirement files makes a second run a no-op.
#
#   tools/bootstrap.sh runtime   # what `make demo` needs
#   tools/bootstrap.sh tests     # runtime + test tools (`make test`)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-runtime}
python=${PYTHON:-python3}
venv=${VENV:-.venv}
reqs=(requirements/runtime.txt)
[ "$profile" = tests ] && reqs+=(requirements/tests.txt)

key=$(cat "${reqs[@]}" requirements/constraints.txt setup.py | sha256sum | cut -c1-16)
stamp="$venv/.bootstrap-$profile-$key"
[ -f "$stamp" ] && exit 0

# A first install of the pinned stack takes about 6.4 GiB (mostly torch's
# default CUDA build and its nvidia-* wheels; README "Installation"), and pip
# stops halfway with a bare "No space left on device". Refuse it up front.
need_mib=7000
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  where=$(cd "$(dirname "$venv")" && pwd)
  free_mib=$(( $(df -Pk "$where" | awk 'NR == 2 {print $4}') / 1024 ))
  if (( free_mib < need_mib )); then
    echo "[bootstrap] error: installing the pinned dependencies into $venv" \
         "needs about $need_mib MiB of free disk, and the file system of" \
         "$where has $free_mib MiB free. Free some space there and run" \
         "the command again." >&2
    exit 1
  fi
fi

start=$(date +%s)
echo "[bootstrap] setting up $venv ($profile) ..."
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
args=(-c requirements/constraints.txt)
for r in "${reqs[@]}"; do args+=(-r "$r"); done
"${pip[@]}" install -q "${args[@]}"
if "$venv/bin/python" -c 'import mmcv._ext' 2>/dev/null; then
  echo "[bootstrap] keeping the compiled mmcv found in $venv"
else
  "${pip[@]}" install -q -c requirements/constraints.txt mmcv-lite
fi
"${pip[@]}" install -q --no-deps --no-build-isolation -e .
rm -f "$venv"/.bootstrap-"$profile"-*
touch "$stamp"
echo "[bootstrap] done in $(( $(date +%s) - start )) s"
