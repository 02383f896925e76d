#!/usr/bin/env bash
# The main job: train the model of a gin config, export its mean representation, score it with
# disentanglement_lib's metrics and print the score table. Creates or reuses .venv first.
#   ./run_local.sh gin_configs/deltavae.gin [--dataset NAME] [--steps N] [--output DIR] [--metrics LIST]
#                  [--resume] [--overwrite] [--time_budget S] [--help]
# Data sets are read from $DISENTANGLEMENT_LIB_DATA (default: ./data).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$repo/scripts/setup_env.sh"
export DISENTANGLEMENT_LIB_DATA="${DISENTANGLEMENT_LIB_DATA:-$repo/data}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$repo/.venv/bin/python" -m applications.run_local "$@"
