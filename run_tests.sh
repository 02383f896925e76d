#!/usr/bin/env bash
# Runs the test suite (creating or reusing .venv first). Extra arguments go to pytest, e.g. ./run_tests.sh -k train
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$repo/scripts/setup_env.sh" ray dev  # the runtime, Ray (its backend is tested) and the test tools
cd "$repo"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
set +e
"$repo/.venv/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
