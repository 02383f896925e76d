#!/usr/bin/env bash
# Creates or reuses the project's virtual environment (.venv) and installs the pinned requirements.
# A fast no-op when the environment already matches requirements*.txt.
# PYTHON (default: python3.11, else python3) chooses the interpreter the environment is made from.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp="$venv/.requirements.sha256"
wanted="$(cat "$repo/requirements.txt" "$repo/requirements-nodeps.txt" "$repo/scripts/setup_env.sh" | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
echo "[setup] preparing $venv (first run installs TensorFlow and friends: about a minute)" >&2
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/requirements.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$repo/requirements-nodeps.txt"
(cd "$repo" && "$venv/bin/python" -c "import submission.compat, tensorflow_probability")
echo "$wanted" > "$stamp"
echo "[setup] environment ready" >&2
