"""Helpers of the AIcrowd entry point (``run.sh``): progress events for the grader, and the training time budget.

    python -m applications.aicrowd start | progress FRACTION | submit | error MESSAGE
    python -m applications.aicrowd budget TOTAL_SECONDS ELAPSED_SECONDS [--reserve SECONDS]
    python -m applications.aicrowd dlib-config RELATIVE_PATH     (the path of a config file shipped with dlib)

Events follow the NeurIPS 2019 disentanglement challenge starter kit's ``aicrowd_helpers``: an
``aicrowd_api.events.AIcrowdEvents`` notifier, INFO events ``execution_started`` and ``register_progress``
(payload ``training_progress`` in [0, 1]), a blocking SUCCESS event ``submit`` and a blocking ERROR event
``execution_error``, each payload's ``event_type`` prefixed ``disentanglement_challenge:``. They are sent only
while grading (``AICROWD_IS_GRADING`` is 1/true/yes) and when ``aicrowd_api`` is importable; otherwise every call
is a silent no-op, so a local run needs neither. A failure to send is reported on one line and never stops the
run: losing a progress message is better than losing the submission. (``aicrowd_api`` itself waits for its
redis server while grading; that is the grader's side of the protocol.)

The budget (``budget``): ``run.sh`` gives training ``TOTAL − RESERVE − ELAPSED`` seconds, never less than 0
(then the training loop stops after its first step), where ELAPSED is what run.sh spent before starting training
and RESERVE, the time kept for everything after the training loop, is by default 10% of the total, at least 60 s
and at most 900 s. What the reserve covers, with rough costs on a GPU: the start of the Python process before the
training loop's clock starts (~10 s), the final checkpoint and the SavedModel export (~10-30 s), the
train-results evaluation over ``model.eval_steps`` batches (1000 batches of 64 in dlib's config: ~1-2 min on a
GPU, several minutes on a CPU — lower ``model.eval_steps`` for CPU runs with a tight budget), and the
postprocessing step (a second process: ~30-60 s). Ten percent of a multi-hour budget leaves a wide margin; the
60 s floor covers short local tries; the 900 s ceiling stops a long budget from wasting training time.
``SUBMISSION_EXPORT_RESERVE`` (passed as ``--reserve``) overrides it.
"""

import importlib
import os
import sys

from submission import cli
from submission.errors import UserError

GRADING_VARIABLE = "AICROWD_IS_GRADING"
EVENT_PREFIX = "disentanglement_challenge:"
RESERVE_FRACTION = 0.1
RESERVE_MIN_SECONDS = 60.
RESERVE_MAX_SECONDS = 900.


def is_grading(environ=None):
  """True when AICROWD_IS_GRADING is 1, true or yes (any case)."""
  value = (os.environ if environ is None else environ).get(GRADING_VARIABLE, "")
  return value.strip().lower() in ("1", "true", "yes")


def default_reserve(total_seconds):
  return min(max(RESERVE_FRACTION * total_seconds, RESERVE_MIN_SECONDS), RESERVE_MAX_SECONDS)


def training_budget(total_seconds, elapsed_seconds, reserve_seconds=None):
  """Seconds for ``train_loop.time_budget_seconds``: total − reserve − elapsed, at least 0."""
  if total_seconds <= 0:
    raise UserError(f"SUBMISSION_TIME_BUDGET must be a positive number of seconds, got {total_seconds:g}")
  reserve = default_reserve(total_seconds) if reserve_seconds is None else reserve_seconds
  if reserve < 0:
    raise UserError(f"SUBMISSION_EXPORT_RESERVE must be >= 0 seconds, got {reserve:g}")
  return max(0., total_seconds - reserve - elapsed_seconds)


def seconds(text, variable):
  """``text`` (an environment variable's value) as seconds; a UserError naming ``variable`` otherwise."""
  try:
    return float(text)
  except ValueError:
    raise UserError(f"{variable} must be a number of seconds, got {text!r}") from None


def budget_of_variables(total_text, elapsed_text, reserve_text=None):
  """``training_budget`` of run.sh's variables; warns when the budget leaves no time to train."""
  total = seconds(total_text, "SUBMISSION_TIME_BUDGET")
  reserve = None if reserve_text is None else seconds(reserve_text, "SUBMISSION_EXPORT_RESERVE")
  budget = training_budget(total, seconds(elapsed_text, "the elapsed time"), reserve)
  if budget == 0:
    kept = default_reserve(total) if reserve is None else reserve
    print(f"warning: SUBMISSION_TIME_BUDGET={total:g}s leaves no training time once the {kept:g}s kept for export "
          f"and setup are taken: training stops after its first step", file=sys.stderr)
  return budget


def dlib_config(relative_path):
  """Absolute path of a file shipped inside disentanglement_lib (e.g. its postprocess configs).

  ``disentanglement_lib.utils.resources`` imports only ``os`` (none of dlib's TensorFlow modules), which keeps
  TensorFlow out of this quick lookup.
  """
  from disentanglement_lib.utils import resources  # pylint: disable=import-outside-toplevel
  path = resources.get_file(relative_path)
  if not os.path.isfile(path):
    raise UserError(f"disentanglement_lib has no file {relative_path} ({path})")
  return path


def notifier(environ=None):
  """An ``aicrowd_api.events.AIcrowdEvents`` while grading with the package installed, else None."""
  if not is_grading(environ):
    return None
  try:
    aicrowd_api = importlib.import_module("aicrowd_api")
  except ImportError:
    return None
  return aicrowd_api.events.AIcrowdEvents()


def send(kind, message, payload=None, blocking=False, environ=None):
  """Registers one event (``kind``: 'INFO', 'SUCCESS' or 'ERROR'); returns whether it was sent."""
  events = notifier(environ)
  if events is None:
    return False
  body = {"event_type": EVENT_PREFIX + message}
  body.update(payload or {})
  try:
    events.register_event(event_type=getattr(events, f"AICROWD_EVENT_{kind}"), message=message, payload=body,
                          blocking=blocking)
  except Exception as e:  # pylint: disable=broad-except  (reporting must never cost the run)
    print(f"warning: could not send the AIcrowd event {message!r}: {' '.join(str(e).split())}", file=sys.stderr)
    return False
  return True


def execution_start():
  return send("INFO", "execution_started")


def register_progress(fraction):
  if not 0. <= fraction <= 1.:
    raise UserError(f"progress must be in [0, 1], got {fraction}")
  return send("INFO", "register_progress", {"training_progress": fraction})


def submit():
  return send("SUCCESS", "submit", blocking=True)


def execution_error(message):
  return send("ERROR", "execution_error", {"error": message}, blocking=True)


def main(argv=None):
  parser = cli.ArgumentParser(description="AIcrowd progress events and the training time budget (run.sh).")
  commands = parser.add_subparsers(dest="command", required=True)
  commands.add_parser("start", help="register the start of the execution")
  progress = commands.add_parser("progress", help="register progress, a fraction in [0, 1]")
  progress.add_argument("fraction", type=float)
  commands.add_parser("submit", help="register the successful end")
  error = commands.add_parser("error", help="register a failure")
  error.add_argument("message")
  budget = commands.add_parser("budget", help="print the training loop's budget in seconds")
  budget.add_argument("total", help="SUBMISSION_TIME_BUDGET, seconds")
  budget.add_argument("elapsed", help="seconds already spent by run.sh")
  budget.add_argument("--reserve", help="SUBMISSION_EXPORT_RESERVE: seconds kept for export and postprocessing")
  config = commands.add_parser("dlib-config", help="print the path of a config file shipped with dlib")
  config.add_argument("relative_path", help="e.g. config/unsupervised_study_v1/postprocess_configs/mean.gin")
  args = parser.parse_args(argv)
  if args.command == "dlib-config":
    print(cli.main_guard(dlib_config, args.relative_path))
  elif args.command == "budget":
    print(f"{cli.main_guard(budget_of_variables, args.total, args.elapsed, args.reserve):.1f}")
  elif args.command == "start":
    cli.main_guard(execution_start)
  elif args.command == "progress":
    cli.main_guard(register_progress, args.fraction)
  elif args.command == "submit":
    cli.main_guard(submit)
  else:
    cli.main_guard(execution_error, args.message)


if __name__ == "__main__":
  main(sys.argv[1:])
