#!/usr/bin/env bash
# Creates or reuses the project's virtual environment (.venv): the pinned runtime requirements, then the project
# itself as an editable package (pyproject.toml), then any extras named as arguments:
#   scripts/setup_env.sh            # what running and scoring need (./run_local.sh, run.sh, the Docker image)
#   scripts/setup_env.sh ray        # + Ray, for evaluation.batch / evaluation.sweep --backend ray
#   scripts/setup_env.sh ray dev    # + the test tools (./run_tests.sh)
#   scripts/setup_env.sh --requirements-only   # the pinned requirements alone, not the project (docker/Dockerfile:
#                                              # a layer that code changes do not invalidate); no stamp is written
# A fast no-op when the environment already has what is asked; extras installed once stay installed.
# PYTHON (default: python3.11, else python3) chooses the interpreter the environment is made from.
# TENSORFLOW_VARIANT (default: cpu) chooses the TensorFlow wheel: cpu installs requirements.txt as it is
# (tensorflow-cpu); gpu installs tensorflow[and-cuda] at the same pinned version instead (the GPU Docker image).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
variant="${TENSORFLOW_VARIANT:-cpu}"
requirements_only=0
if [ "${1:-}" = --requirements-only ]; then
  requirements_only=1
  shift
fi
case "$variant" in
  cpu|gpu) ;;
  *) echo "error: TENSORFLOW_VARIANT must be cpu or gpu, got '$variant'" >&2; exit 2 ;;
esac
for extra in "$@"; do
  if [ ! -f "$repo/requirements-$extra.txt" ]; then
    echo "error: unknown extra '$extra' (known: ray, dev)" >&2; exit 2
  fi
done
pip_install() { "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"; }

install_requirements() {  # the pinned requirements, with the TensorFlow wheel of $variant
  requirements="$repo/requirements.txt"
  if [ "$variant" = gpu ]; then
    requirements="$venv/requirements-gpu.txt"
    sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' "$repo/requirements.txt" > "$requirements"
  fi
  pip_install --upgrade pip
  pip_install -r "$requirements"
  pip_install --no-deps -r "$repo/requirements-nodeps.txt"
}
if [ "$requirements_only" = 1 ]; then
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  install_requirements
  echo "$variant" > "$venv/.tensorflow-variant"  # so that the full run below keeps this environment
  echo "[setup] pinned requirements installed in $venv (not the project: --requirements-only)" >&2
  exit 0
fi

stamp="$venv/.requirements.sha256"
wanted="$( (cat "$repo/requirements.txt" "$repo/requirements-nodeps.txt" "$repo/pyproject.toml" \
                "$repo/scripts/setup_env.sh"
            echo "tensorflow variant: $variant") | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -x "$venv/bin/python" ]; then
  echo "[setup] preparing $venv (first run installs TensorFlow and friends: about a minute)" >&2
  # tensorflow-cpu and tensorflow[and-cuda] install the same package directory: switching variants starts afresh.
  if [ -f "$venv/.tensorflow-variant" ] && [ "$(cat "$venv/.tensorflow-variant")" != "$variant" ]; then
    rm -rf "$venv"
  fi
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  install_requirements
  # The package itself, built offline by the venv's own setuptools (Python 3.12+ venvs come without one); its
  # informational warnings (pyproject support "beta" in setuptools 65) are silenced.
  "$venv/bin/python" -c "import setuptools" 2>/dev/null || pip_install "setuptools>=64"
  PYTHONWARNINGS=ignore pip_install --no-deps --no-build-isolation -e "$repo"
  (cd / && "$venv/bin/python" -c "import submission.compat, evaluation, tensorflow_probability")
  rm -f "$venv/.extras"
  echo "$variant" > "$venv/.tensorflow-variant"
  echo "$wanted" > "$stamp"
  echo "[setup] environment ready" >&2
fi
for extra in "$@"; do
  line="$extra $(sha256sum "$repo/requirements-$extra.txt" | cut -d' ' -f1)"
  if ! grep -qxF "$line" "$venv/.extras" 2>/dev/null; then
    echo "[setup] installing the extra [$extra] (requirements-$extra.txt)" >&2
    pip_install -r "$repo/requirements-$extra.txt"
    echo "$line" >> "$venv/.extras"
  fi
done
