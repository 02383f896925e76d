#!/usr/bin/env bash
# Creates or reuses the project's virtual environment (.venv) and installs the pinned requirements.
# A fast no-op when the environment already matches requirements*.txt.
# PYTHON (default: python3.11, else python3) chooses the interpreter the environment is made from.
# TENSORFLOW_VARIANT (default: cpu) chooses the TensorFlow wheel: cpu installs requirements.txt as it is
# (tensorflow-cpu); gpu installs tensorflow[and-cuda] at the same pinned version instead (the docker/ GPU image).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
variant="${TENSORFLOW_VARIANT:-cpu}"
case "$variant" in
  cpu|gpu) ;;
  *) echo "error: TENSORFLOW_VARIANT must be cpu or gpu, got '$variant'" >&2; exit 2 ;;
esac
stamp="$venv/.requirements.sha256"
wanted="$( (cat "$repo/requirements.txt" "$repo/requirements-nodeps.txt" "$repo/scripts/setup_env.sh"
            echo "tensorflow variant: $variant") | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
echo "[setup] preparing $venv (first run installs TensorFlow and friends: about a minute)" >&2
# tensorflow-cpu and tensorflow[and-cuda] install the same package directory: switching variants starts afresh.
if [ -f "$venv/.tensorflow-variant" ] && [ "$(cat "$venv/.tensorflow-variant")" != "$variant" ]; then
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
requirements="$repo/requirements.txt"
if [ "$variant" = gpu ]; then
  requirements="$venv/requirements-gpu.txt"
  sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' "$repo/requirements.txt" > "$requirements"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$repo/requirements-nodeps.txt"
(cd "$repo" && "$venv/bin/python" -c "import submission.compat, tensorflow_probability")
echo "$variant" > "$venv/.tensorflow-variant"
echo "$wanted" > "$stamp"
echo "[setup] environment ready" >&2
