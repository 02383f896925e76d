#!/usr/bin/env bash
# The AIcrowd entry point (NeurIPS 2019 Disentanglement Challenge convention; the grader runs it as
# /home/aicrowd/run.sh inside the docker/ image): trains the model of a gin config on the challenge's data set and
# writes what the grader reads,
#   $AICROWD_OUTPUT_PATH/$AICROWD_EVALUATION_NAME/representation   the mean representation (postprocessed)
#   $AICROWD_OUTPUT_PATH/$AICROWD_EVALUATION_NAME/model            the trained model
# Score that output locally with:  .venv/bin/python -m evaluation.local_evaluation
#
# Environment (defaults in brackets; those of the challenge's starter kit where it had one):
#   AICROWD_OUTPUT_PATH        output root                                  [./scratch/shared]
#   AICROWD_EVALUATION_NAME    experiment directory under it                [experiment_name]
#   AICROWD_DATASET_NAME       dataset.name to train on                     [the gin file's]
#   DISENTANGLEMENT_LIB_DATA   where the data sets are                      [./data]
#   AICROWD_IS_GRADING         1/true/yes: report progress with aicrowd_api (if installed); else silent
#   SUBMISSION_GIN             model config                                 [gin_configs/deltavae.gin]
#   SUBMISSION_GIN_BINDINGS    extra gin bindings, separated by newlines or ';', e.g.
#                              "model.training_steps = 1000; model.batch_size = 32" (they override the above)
#   SUBMISSION_TIME_BUDGET     seconds for the whole run; training stops early, leaving time to export
#                              (unset: no budget)
#   SUBMISSION_EXPORT_RESERVE  seconds of the budget kept for export and postprocessing
#                              [10% of the budget, at least 60, at most 900; see applications/aicrowd.py]
# The Python environment is the README's (.venv, created or reused by scripts/setup_env.sh), except inside the
# docker/ images, which set SUBMISSION_IMAGE and were built with that same script.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${SUBMISSION_IMAGE:-}" ]; then
  "$repo/scripts/setup_env.sh"
fi
python="$repo/.venv/bin/python"
if [ ! -x "$python" ]; then
  echo "error: $python does not exist; run scripts/setup_env.sh (or rebuild the docker image)" >&2
  exit 2
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export DISENTANGLEMENT_LIB_DATA="${DISENTANGLEMENT_LIB_DATA:-$repo/data}"
export AICROWD_OUTPUT_PATH="${AICROWD_OUTPUT_PATH:-$repo/scratch/shared}"
export AICROWD_EVALUATION_NAME="${AICROWD_EVALUATION_NAME:-experiment_name}"
gin_file="${SUBMISSION_GIN:-$repo/gin_configs/deltavae.gin}"
if [ ! -f "$gin_file" ] && [ -f "$repo/$gin_file" ]; then
  gin_file="$repo/$gin_file"  # a path relative to the repository, e.g. gin_configs/beta_vae.gin
fi
experiment="$AICROWD_OUTPUT_PATH/$AICROWD_EVALUATION_NAME"

aicrowd() { "$python" -m applications.aicrowd "$@"; }  # progress events, budget, dlib paths
# A grader stops a container at its time limit with SIGTERM to this shell, which bash would act on only after the
# step running in the foreground had finished: the steps run in the background and the signal is passed on to them
# (training then writes a checkpoint at its current step), and the shell waits until the step has exited.
# (Passed on as SIGTERM either way: a background step starts with SIGINT ignored, as bash starts every one.)
step_pid=""
pass_on() { if [ -n "$step_pid" ]; then kill -s TERM "$step_pid" 2>/dev/null || true; fi; }
trap pass_on TERM INT
step() {
  "$@" &
  step_pid=$!
  local status=0
  wait "$step_pid" || status=$?
  while kill -0 "$step_pid" 2>/dev/null; do  # wait was cut short by a signal passed on: wait for the exit
    status=0
    wait "$step_pid" || status=$?
  done
  step_pid=""
  return "$status"
}
failed() {
  local status=$?
  aicrowd error "run.sh failed with exit status $status" || true
  exit "$status"
}
trap failed ERR

stop() {  # one error line (and the grader's error event), exit status 2
  echo "error: $1" >&2
  aicrowd error "$1" || true
  exit 2
}
if [ ! -f "$gin_file" ]; then
  stop "SUBMISSION_GIN: gin config $gin_file does not exist"
fi
# The grader's two mounts, checked before TensorFlow starts: a missing or read-only output volume would otherwise
# surface only after training, as a traceback. (The data set's own file is checked by the data loader, which
# knows its name under this directory.)
if [ ! -d "$DISENTANGLEMENT_LIB_DATA" ]; then
  stop "DISENTANGLEMENT_LIB_DATA: data directory $DISENTANGLEMENT_LIB_DATA does not exist (is the data mounted?)"
fi
# The parent, not the experiment directory itself, is made here: the directory belongs to whoever holds its lock.
if ! mkdir -p "$(dirname "$experiment")" 2>/dev/null || [ ! -w "$(dirname "$experiment")" ] \
    || { [ -e "$experiment" ] && [ ! -w "$experiment" ]; }; then
  stop "AICROWD_OUTPUT_PATH: $experiment is not writable by uid $(id -u) (is the output volume mounted writable?)"
fi

# One writer per experiment directory (submission/output_lock.py): this shell holds the lock on fd 9 until it exits,
# so a second run.sh on the same directory stops at once, naming this one.
lock_file="$(dirname "$experiment")/.$(basename "$experiment").lock"
if ! { mkdir -p "$(dirname "$experiment")" && exec 9<>"$lock_file"; } 2>/dev/null; then
  "$python" -m submission.output_lock "$experiment"  # one line saying why (AICROWD_OUTPUT_PATH under a file, ...)
  exit 2
fi
"$python" -m submission.output_lock "$experiment" 9 $$
trap 'rm -f "$lock_file"' EXIT

bindings=()
if [ -n "${AICROWD_DATASET_NAME:-}" ]; then
  bindings+=("dataset.name = '$AICROWD_DATASET_NAME'")
fi
if [ -n "${SUBMISSION_TIME_BUDGET:-}" ]; then
  reserve=()
  if [ -n "${SUBMISSION_EXPORT_RESERVE:-}" ]; then
    reserve=(--reserve "$SUBMISSION_EXPORT_RESERVE")
  fi
  # SECONDS: what this script has spent so far (setting up), also taken from the budget.
  budget="$(aicrowd budget "$SUBMISSION_TIME_BUDGET" "$SECONDS" "${reserve[@]}")"
  echo "[run.sh] time budget ${SUBMISSION_TIME_BUDGET}s: training stops after ${budget}s, then exports"
  bindings+=("train_loop.time_budget_seconds = $budget")
fi
if [ -n "${SUBMISSION_GIN_BINDINGS:-}" ]; then
  bindings+=("${SUBMISSION_GIN_BINDINGS//;/$'\n'}")
fi

echo "[run.sh] training $gin_file into $experiment/model"
aicrowd start
aicrowd progress 0.0
train_args=(--model_dir "$experiment/model" --overwrite --gin_config "$gin_file")
if [ "${#bindings[@]}" -gt 0 ]; then
  train_args+=(--gin_bindings "${bindings[@]}")
fi
step "$python" -m submission.train "${train_args[@]}"
aicrowd progress 0.9

mean_gin="$(aicrowd dlib-config config/unsupervised_study_v1/postprocess_configs/mean.gin)"
echo "[run.sh] mean representation into $experiment/representation"
step "$python" -m submission.postprocess --model_dir "$experiment/model" --output_dir "$experiment/representation" \
  --overwrite --gin_config "$mean_gin"
aicrowd progress 1.0
echo "[run.sh] written: $experiment/representation (and $experiment/model)"
aicrowd submit
