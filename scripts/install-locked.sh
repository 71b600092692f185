#!/usr/bin/env bash
# Install tlog-monitor and its runtime dependencies into a new virtual environment, from the
# hash-locked files only. The container image (Dockerfile) and CI both install this way, so
# what CI checks is what the image runs.
#
#   scripts/install-locked.sh VENV
#
# - uv comes from requirements/bootstrap.txt (pip --require-hashes), into a throw-away
#   tools environment: it is not part of VENV.
# - The runtime dependencies come from uv.lock (`uv export --locked --no-dev`, every one with
#   its hashes), as wheels only: nothing is built from a source distribution.
# - The project's own wheel is built with the build backend from requirements/build.txt,
#   also hash-checked.
# - With SOURCE_DATE_EPOCH set, every file in VENV gets that time, and the wheel's zip
#   entries carry it, so two installs of one commit at one path are byte-identical.
#   Bytecode is compiled in checked-hash mode, which does not depend on file times.
#
# Environment: PYTHON (the interpreter for VENV, default python3), SOURCE_DATE_EPOCH,
# UV_CACHE_DIR and PIP_CACHE_DIR (downloads are cached there as usual).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi
venv=$1
python=${PYTHON:-python3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ -e $venv ]]; then
    # never install over something: a fresh environment is what makes the result reproducible
    echo "install-locked: $venv already exists; give a new path" >&2
    exit 2
fi
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    unset SOURCE_DATE_EPOCH # set but empty (a build ARG without a value) means unset
elif [[ ! ${SOURCE_DATE_EPOCH} =~ ^[0-9]+$ ]]; then
    echo "install-locked: SOURCE_DATE_EPOCH must be a number of seconds" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Only the uv of the bootstrap file, and only the interpreter we are given.
export UV_PYTHON_DOWNLOADS=never UV_NO_CONFIG=1 UV_LINK_MODE=copy
# No direct_url.json naming the temporary wheel path: it would differ between two runs.
export UV_NO_INSTALLER_METADATA=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --require-hashes --no-deps \
    -r "$root/requirements/bootstrap.txt"
uv=$work/tools/bin/uv

# The runtime dependencies as uv.lock pins them; --locked fails if pyproject.toml and
# uv.lock disagree instead of resolving anew.
(cd "$root" && "$uv" export --quiet --locked --no-dev --no-emit-project --no-header \
    --format requirements-txt --output-file "$work/runtime.txt")

(cd "$root" && "$uv" build --quiet --no-build-logs --wheel --out-dir "$work/dist" \
    --build-constraints requirements/build.txt --require-build-hashes)
wheels=("$work"/dist/*.whl)
if [[ ${#wheels[@]} -ne 1 ]]; then
    echo "install-locked: expected one wheel, got: ${wheels[*]}" >&2
    exit 1
fi

"$python" -m venv --without-pip "$venv"
"$uv" pip sync --quiet --python "$venv/bin/python" --require-hashes --no-build \
    "$work/runtime.txt"
"$uv" pip install --quiet --python "$venv/bin/python" --no-deps --no-build "${wheels[0]}"

# Compiled now, since a read-only root filesystem cannot take __pycache__ at run time.
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode checked-hash "$venv/lib" >/dev/null

if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
    find "$venv" -newermt "@$SOURCE_DATE_EPOCH" -print0 \
        | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"
fi
