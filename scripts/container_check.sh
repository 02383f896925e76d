#!/usr/bin/env bash
# Builds the submission image from docker/Dockerfile and runs it as the AIcrowd grader would, then scores what it
# wrote from outside the container, with the host's .venv (so the exported representation is proven readable by a
# different installation). Every stage prints its wall time; a failing stage stops the script with one
# "error: stage NAME: ..." line and exit status 1 (bad arguments: exit status 2).
#
#   scripts/container_check.sh                # CPU image, podman (installed with apt when missing; needs root)
#   scripts/container_check.sh --gpu          # GPU image (tensorflow[and-cuda]); without a GPU it trains on the CPU
#   scripts/container_check.sh --engine docker --gpu --gpus all    # a GPU host with Docker + NVIDIA toolkit
#
# Stages: install, configure (podman's settings for this kind of machine), base (a local Debian base image made with
# mmdebstrap + podman import, as Docker Hub may be unreachable; docker: the Dockerfile's official base), build,
# image (non-root user, TensorFlow imports, GPUs seen), bad-mounts (missing data set, missing or read-only output
# volume: one error line each), grader-run (run.sh with a read-only data mount, a writable scratch volume, the
# image's own user, no network and SUBMISSION_TIME_BUDGET, which must stop it in time with the representation
# exported), score (evaluation.local_evaluation outside the container), kill-export (the container killed while
# the representation is being written must leave no representation directory at all, never half of one).
#
# Options:
#   --gpu                  the GPU variant (image tag :gpu) instead of the CPU one (:cpu)
#   --engine podman|docker container engine [podman]
#   --gpus all             give the containers the host's GPUs (docker: --gpus all; podman: CDI nvidia.com/gpu=all)
#                          and require TensorFlow to see one
#   --budget SECONDS       SUBMISSION_TIME_BUDGET of the grader run [420]
#   --reserve SECONDS      SUBMISSION_EXPORT_RESERVE: the part of the budget kept for what follows the training loop
#                          [300; run.sh's default, 10% with a 60 s floor, is sized for the grader's hours-long budget
#                          on a GPU; on 2 CPU cores shared with other work (load average ~15), a 240 s budget with
#                          that reserve ran 288 s, and a 180 s one with a 120 s reserve 296 s. The grader-run stage
#                          prints what the work after the loop took (38-138 s here).]
#   --steps N              model.training_steps of the grader run; the budget stops it first by default [100000]
#   --data DIR             the DISENTANGLEMENT_LIB_DATA to mount read-only [$DISENTANGLEMENT_LIB_DATA, else ./data]
#   --workdir DIR          scratch volumes, logs, the base image's tarball [/var/tmp/container_check]
#   --metric-bindings B    gin bindings for every metric of the score stage, ';'-separated (smaller samples for a
#                          quick check; such scores are not the challenge's)
#   --no-score, --no-kill  skip those stages
#   --install-only         install the tools and stop (what .ci/run uses)
# Environment: SUBMISSION_GIN, passed into the container (default: the image's gin_configs/deltavae.gin).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

variant=cpu engine=podman gpus="" budget=420 reserve=300 steps=100000 data="${DISENTANGLEMENT_LIB_DATA:-$repo/data}"
workdir=/var/tmp/container_check metric_bindings="" score=1 kill_check=1 install_only=0
usage_error() { echo "error: $1 (see the header of $0)" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) variant=gpu ;;
    --engine) engine="${2:-}"; shift ;;
    --gpus) gpus="${2:-}"; shift ;;
    --budget) budget="${2:-}"; shift ;;
    --reserve) reserve="${2:-}"; shift ;;
    --steps) steps="${2:-}"; shift ;;
    --data) data="${2:-}"; shift ;;
    --workdir) workdir="${2:-}"; shift ;;
    --metric-bindings) metric_bindings="${2:-}"; shift ;;
    --no-score) score=0 ;;
    --no-kill) kill_check=0 ;;
    --install-only) install_only=1 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
case "$engine" in podman|docker) ;; *) usage_error "--engine must be podman or docker, got '$engine'" ;; esac
case "$gpus" in ""|all) ;; *) usage_error "--gpus takes 'all', got '$gpus'" ;; esac
[[ "$reserve" =~ ^[0-9]+$ ]] || usage_error "--reserve must be a whole number of seconds, got '$reserve'"
[[ "$budget" =~ ^[0-9]+$ ]] && [ "$budget" -gt "$reserve" ] \
  || usage_error "--budget must be a whole number of seconds above the reserve ($reserve s), got '$budget'"
[[ "$steps" =~ ^[0-9]+$ ]] && [ "$steps" -ge 1 ] || usage_error "--steps must be a positive integer, got '$steps'"
data="$(realpath -m "$data")" workdir="$(realpath -m "$workdir")"
image="localhost/disentanglement-submission:$variant"
base_image=localhost/container-check-base:bookworm
dataset_file="$data/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"

# --- stages -------------------------------------------------------------------------------------------------------
current_stage=""
script_start=$SECONDS
stage() {  # stage NAME: prints the start; the next stage (or finish) prints the previous one's wall time
  finish_stage
  current_stage="$1" stage_start=$(date +%s%N)
  echo "[container_check] stage $current_stage ..."
}
finish_stage() {
  if [ -n "$current_stage" ]; then
    local tenths=$(( ($(date +%s%N) - stage_start) / 100000000 ))
    echo "[container_check] stage $current_stage: ok ($(( tenths / 10 )).$(( tenths % 10 )) s)"
  fi
  current_stage=""
}
fail() {  # fail MESSAGE: the one line that names the failing stage
  echo "error: stage ${current_stage:-setup}: $1" >&2
  current_stage=""  # reported: the EXIT trap stays quiet
  exit 1
}
# Any command failing under set -e is reported against the stage it happened in.
trap 'status=$?; if [ $status -ne 0 ] && [ -n "$current_stage" ]; then
        echo "error: stage $current_stage: a command failed (exit status $status, line $LINENO)" >&2; fi' EXIT

image_size() { "$engine" image inspect --format '{{.Size}}' "$1" | awk '{printf "%.2f GB", $1 / 1e9}'; }

# --- install ------------------------------------------------------------------------------------------------------
stage install
needed=()
if [ "$engine" = podman ]; then
  for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || needed+=("$tool"); done
else
  command -v docker >/dev/null || fail "docker is not installed (install Docker and the NVIDIA container toolkit)"
fi
if [ ${#needed[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    fail "missing ${needed[*]}; this script installs them with apt-get as root (Debian), or install them yourself"
  fi
  echo "[container_check] apt-get install ${needed[*]}"
  apt-get update -qq || fail "apt-get update failed"
  # uidmap: newuidmap/newgidmap, which podman wants even as root.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" uidmap >/dev/null \
    || fail "apt-get install ${needed[*]} failed"
fi
if [ "$install_only" = 1 ]; then
  finish_stage
  exit 0
fi
[ -f "$dataset_file" ] || fail "no rendered dSprites at $dataset_file (python -m submission.data generate dsprites, or --data)"
[ -x "$repo/.venv/bin/python" ] || fail "no $repo/.venv for the score stage: run scripts/setup_env.sh"

# --- configure ----------------------------------------------------------------------------------------------------
mkdir -p "$workdir"
engine_run=("$engine" run --rm)
engine_build=("$engine" build)
if [ "$engine" = podman ]; then
  stage configure
  # This machine's kernel has hybrid cgroups, which crun (podman's default runtime) refuses: runc. Podman's default
  # ulimits are above the hard limits processes get here (nofile 20000), and containers fail to start: lower.
  cat > "$workdir/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
  export CONTAINERS_CONF="$workdir/containers.conf"
  engine_run=(podman run --rm --runtime runc)
  # pip inside the build verifies the index's certificate against the host's CA bundle (the base's own bundle is not
  # enough where TLS is intercepted); mounted read-only into each RUN step, never copied into the image.
  engine_build=(podman build --runtime runc)
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    engine_build+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  fi
  # --- base ---------------------------------------------------------------------------------------------------------
  stage base
  # What the official python:3.11-slim-bookworm gives the Dockerfile: Python 3.11 with venv, CA certificates and
  # useradd (passwd). Remade only when this recipe changes.
  base_packages=python3,python3-venv,ca-certificates,passwd
  recipe="mmdebstrap --variant=apt --include=$base_packages bookworm"
  if [ "$(podman image inspect --format '{{index .Labels "container_check.recipe"}}' "$base_image" 2>/dev/null)" \
       = "$recipe" ]; then
    echo "[container_check] reusing $base_image ($recipe)"
  else
    rm -f "$workdir/base.tar"
    $recipe "$workdir/base.tar" http://deb.debian.org/debian >"$workdir/mmdebstrap.log" 2>&1 \
      || fail "mmdebstrap failed (log: $workdir/mmdebstrap.log)"
    podman import --change "LABEL container_check.recipe=\"$recipe\"" --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' "$workdir/base.tar" "$base_image" >/dev/null || fail "podman import failed"
    rm -f "$workdir/base.tar"
  fi
  echo "[container_check] base image $base_image: $(image_size "$base_image")"
  # Can podman start a container at all here? (Inside an unprivileged container it cannot; the test skips on this
  # message.)
  podman run --rm --runtime runc --network none "$base_image" true \
    || fail "podman cannot run containers on this machine"
  engine_build+=(--build-arg "BASE_IMAGE=$base_image")
fi

# --- build --------------------------------------------------------------------------------------------------------
stage build
# The engine's layer cache makes an unchanged context a no-op (seconds): each COPY is compared by content.
"${engine_build[@]}" -f "$repo/docker/Dockerfile" --build-arg "TENSORFLOW_VARIANT=$variant" -t "$image" "$repo" \
  >"$workdir/build-$variant.log" 2>&1 || { tail -20 "$workdir/build-$variant.log" >&2; fail "$engine build failed (log: $workdir/build-$variant.log)"; }
echo "[container_check] image $image: $(image_size "$image")"

gpu_args=()
if [ -n "$gpus" ]; then
  if [ "$engine" = docker ]; then gpu_args=(--gpus all); else gpu_args=(--device nvidia.com/gpu=all); fi
fi
gin_args=()
if [ -n "${SUBMISSION_GIN:-}" ]; then gin_args=(-e "SUBMISSION_GIN=$SUBMISSION_GIN"); fi
# How the grader starts the image: its own user (no --user), no network, the data read-only, a writable scratch.
grader_run() {  # grader_run SCRATCH [engine options ...]   (SCRATCH: a host directory, + ":ro" to mount it so)
  local scratch_dir="${1%:ro}" scratch_mode=""
  if [ "$scratch_dir" != "$1" ]; then scratch_mode=":ro"; fi
  "${engine_run[@]}" --network none "${gpu_args[@]}" \
    -v "$data:/home/aicrowd/data:ro" -v "$scratch_dir:/home/aicrowd/scratch$scratch_mode" \
    -e AICROWD_DATASET_NAME=dsprites_full -e AICROWD_EVALUATION_NAME=experiment_name \
    "${gin_args[@]}" "${@:2}" "$image"
}
fresh_scratch() {  # a new scratch volume the image's user (uid 1000, not root) can write
  local scratch="$workdir/$1"
  rm -rf "$scratch"
  mkdir -p "$scratch/shared"
  chmod -R a+rwx "$scratch"
  echo "$scratch"
}
# exactly_one_error_line OUTPUT WHAT: the output has one "error:" line, mentioning WHAT
exactly_one_error_line() {
  local lines
  lines="$(grep -c '^error:' <<<"$1" || true)"
  [ "$lines" = 1 ] || fail "expected one 'error:' line, got $lines: $(tail -5 <<<"$1")"
  grep '^error:' <<<"$1" | grep -q "$2" || fail "the error line does not mention '$2': $(grep '^error:' <<<"$1")"
  echo "[container_check]   $(grep '^error:' <<<"$1")"
}

# --- image --------------------------------------------------------------------------------------------------------
stage image
uid="$("${engine_run[@]}" --network none --entrypoint id "$image" -u)" || fail "cannot start $image"
[ "$uid" != 0 ] || fail "the image runs as root"
echo "[container_check] runs as uid $uid"
gpu_count="$("${engine_run[@]}" --network none "${gpu_args[@]}" --entrypoint .venv/bin/python "$image" -c '
import os; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
print(tf.__version__, "gpus:", len(tf.config.list_physical_devices("GPU")), "built with CUDA:", tf.test.is_built_with_cuda())
' 2>/dev/null | tail -1)" || fail "TensorFlow does not import in $image"
echo "[container_check] TensorFlow $gpu_count"
if [ -n "$gpus" ] && [[ "$gpu_count" == *"gpus: 0 "* ]]; then
  fail "--gpus all was given but TensorFlow sees no GPU in the container"
fi

# --- bad-mounts ---------------------------------------------------------------------------------------------------
stage bad-mounts
empty="$(fresh_scratch empty-data)"
scratch="$(fresh_scratch bad-mounts)"
# The grader forgot the data: the image's data directory is empty.
set +e
output="$("${engine_run[@]}" --network none -v "$empty:/home/aicrowd/data:ro" -v "$scratch:/home/aicrowd/scratch" \
  -e AICROWD_DATASET_NAME=dsprites_full "$image" 2>&1)"; status=$?
set -e
[ $status -ne 0 ] || fail "run.sh succeeded without a data set"
exactly_one_error_line "$output" "dsprites"
# The output volume mounted read-only.
set +e
output="$(grader_run "$scratch:ro" 2>&1)"; status=$?
set -e
[ $status -ne 0 ] || fail "run.sh succeeded with a read-only output volume"
exactly_one_error_line "$output" "not writable"
# No output volume at all, and AICROWD_OUTPUT_PATH pointing where nothing is mounted.
set +e
output="$("${engine_run[@]}" --network none -v "$data:/home/aicrowd/data:ro" -e AICROWD_OUTPUT_PATH=/mnt/output \
  "$image" 2>&1)"; status=$?
set -e
[ $status -ne 0 ] || fail "run.sh succeeded with no output volume"
exactly_one_error_line "$output" "AICROWD_OUTPUT_PATH"

# --- grader-run ---------------------------------------------------------------------------------------------------
stage grader-run
scratch="$(fresh_scratch grader-run)"
experiment="$scratch/shared/experiment_name"
# eval_steps: the train-results evaluation after training (dlib's 1000 batches) would take minutes on a CPU.
start=$(date +%s)
set +e
# Each line stamped with the second it arrived: how long the work after the training loop took is what the reserve
# has to cover.
grader_run "$scratch" -e "SUBMISSION_TIME_BUDGET=$budget" -e "SUBMISSION_EXPORT_RESERVE=$reserve" \
  -e "SUBMISSION_GIN_BINDINGS=model.training_steps = $steps; model.eval_steps = 20" 2>&1 \
  | while IFS= read -r line; do echo "$(( $(date +%s) - start )) $line"; done >"$workdir/grader-run.log"
status=${PIPESTATUS[0]}
set -e
wall=$(( $(date +%s) - start ))
loop_end="$(grep -m1 -E '^[0-9]+ \[train\] (time budget of .* reached|done in)' "$workdir/grader-run.log" | cut -d' ' -f1)"
after_loop="$(( wall - ${loop_end:-0} ))"
[ "$status" -eq 0 ] || { tail -20 "$workdir/grader-run.log" >&2; fail "run.sh exited with status $status (log: $workdir/grader-run.log)"; }
grep -E '^[0-9]+ \[(run\.sh|train)\] (time|training|mean|written|done)' "$workdir/grader-run.log" \
  | sed -E 's/^([0-9]+) /[container_check]   at \1 s: /'
trained="$(grep -o '"global_step": [0-9]*' "$experiment/model/results/json/train_results.json" 2>/dev/null \
           | grep -o '[0-9]*$' || echo '?')"
echo "[container_check] trained $trained steps; the container ran ${wall}s of a ${budget}s budget;" \
  "the work after the training loop took ${after_loop}s of the ${reserve}s reserve"
[ "$wall" -le "$budget" ] || fail "the container ran ${wall}s, over SUBMISSION_TIME_BUDGET=${budget}s (the work\
 after the training loop took ${after_loop}s: a larger --reserve on a machine this slow)"
[ -f "$experiment/representation/tfhub/saved_model.pb" ] \
  || fail "no representation at the grader's path ($experiment/representation/tfhub)"

# --- score --------------------------------------------------------------------------------------------------------
if [ "$score" = 1 ]; then
  stage score
  bindings=()
  if [ -n "$metric_bindings" ]; then
    IFS=';' read -r -a bindings <<<"$metric_bindings"
    bindings=(--metric_bindings "${bindings[@]}")
  fi
  # The host scores from the same data the container read (--data), whatever DISENTANGLEMENT_LIB_DATA says.
  (cd "$repo" && DISENTANGLEMENT_LIB_DATA="$data" TF_CPP_MIN_LOG_LEVEL=2 nice -n 5 .venv/bin/python -m evaluation.local_evaluation \
      --representation "$experiment/representation" --output "$workdir/scores-$variant.json" "${bindings[@]}") \
    >"$workdir/score.log" 2>&1 || { tail -5 "$workdir/score.log" >&2; fail "local_evaluation failed (log: $workdir/score.log)"; }
  grep '^\[local_evaluation [0-9]' "$workdir/score.log" | grep ' = ' | sed 's/^/[container_check]   /'
  "$repo/.venv/bin/python" - "$workdir/scores-$variant.json" <<'EOF' || fail "the scores are not the challenge's five numbers"
import json, math, sys
scores = json.load(open(sys.argv[1]))
assert sorted(scores) == ["dci", "factor_vae_metric", "irs", "mig", "sap_score"], scores
assert all(math.isfinite(value) for value in scores.values()), scores
EOF
fi

# --- kill-export --------------------------------------------------------------------------------------------------
if [ "$kill_check" = 1 ]; then
  stage kill-export
  # run.sh's postprocess writes the representation into .representation.partial-* beside its final path and
  # renames it when complete. The moment that directory appears, SIGKILL goes straight to the container's init (its
  # host pid): the whole PID namespace dies at once, nothing gets to clean up. No engine command sits between seeing
  # the directory and the kill: under load one takes a second, longer than the export of a small model.
  killed=0
  for attempt in 1 2 3; do  # the export can still finish between two polls; each attempt is a fresh run
    scratch="$(fresh_scratch kill-export)"
    experiment="$scratch/shared/experiment_name"
    name="container-check-kill-$$-$attempt"
    grader_run "$scratch" -d --name "$name" \
      -e "SUBMISSION_GIN_BINDINGS=model.training_steps = 20; model.eval_steps = 2" >/dev/null
    pid="$("$engine" container inspect --format '{{.State.Pid}}' "$name" 2>/dev/null || echo 0)"
    if [ "${pid:-0}" -gt 1 ]; then  # (0: already gone; kill 0 would signal this script's own process group)
      for _ in $(seq 1 30000); do  # polls every 20 ms, for at most 10 minutes
        if compgen -G "$experiment/.representation.partial-*" >/dev/null; then
          kill -KILL "$pid" 2>/dev/null && killed=1
          break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
      done
    fi
    "$engine" rm -f "$name" >/dev/null 2>&1 || true
    if [ "$killed" = 1 ]; then break; fi
    echo "[container_check] attempt $attempt: the export finished between two polls; again"
  done
  [ "$killed" = 1 ] || fail "in 3 runs the container ended before its representation export was seen"
  echo "[container_check] killed mid-export; the experiment directory holds: $(cd "$experiment" && ls -A | tr '\n' ' ')"
  if [ -e "$experiment/representation" ]; then
    # Only the rename can have made it, so the kill landed after it: it must be whole (the SavedModel loads).
    (cd "$repo" && TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python -c \
      'import sys, tensorflow as tf; tf.saved_model.load(sys.argv[1] + "/tfhub")' "$experiment/representation") \
      >/dev/null 2>&1 || fail "a half-written representation is left at $experiment/representation"
    echo "[container_check] the kill landed just after the export's rename: the representation is whole"
  else
    echo "[container_check] no representation at the grader's path (the partial one is not where the grader reads)"
  fi
fi
finish_stage
echo "[container_check] all stages passed in $(( SECONDS - script_start ))s: $image ($(image_size "$image"))"
