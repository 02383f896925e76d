"""The checks of a pipeline run that need no TensorFlow, so that a command line answers a typo in about a second
(importing TensorFlow costs 10-15 s), and the default number of metrics evaluated at once."""

import os
import tempfile

from evaluation import workers
from submission import cli, output_lock
from submission.errors import UserError
from submission.study import DEFAULT_METRICS, metric_config

# Metrics evaluated at once, each in its own process with cores/N threads (bench/metric_suite.py measures the
# suite with 1 and 2 workers; on 2 cores DCI's boosting runs beside the others).
DEFAULT_METRIC_WORKERS = min(2, workers.cpu_count())


def check_run(gin_file, output_dir, steps, metrics, resume, overwrite, time_budget, metric_workers=1):
  """A UserError for the first argument of ``pipeline.run_pipeline`` that cannot work (``claim_run`` then checks
  the output directory's state, under its lock)."""
  if resume and overwrite:
    raise UserError("--resume continues the run in the output directory and --overwrite replaces it: pass one")
  if metric_workers < 1:
    raise UserError(f"--metric_workers must be at least 1, got {metric_workers}")
  cli.check_gin_file(gin_file)
  if steps is not None:
    cli.check_integer("--steps", steps)
  if time_budget is not None:
    cli.check_positive_number("--time_budget (seconds)", time_budget)
  if not metrics:
    raise UserError(f"--metrics names no metric; give one or more of {', '.join(DEFAULT_METRICS)}, ...")
  for metric in metrics:
    metric_config(metric)
  # The output's parent receives the temporary siblings an output is written to (and an --overwrite's new run)
  # and the output's lock.
  check_writable(os.path.dirname(os.path.abspath(output_dir)), f"output directory {output_dir}")


def claim_run(gin_file, output_dir, steps, metrics, resume, overwrite, time_budget, metric_workers=1):
  """``check_run``, then claims the output directory (``submission.output_lock``: another writer of it is refused,
  naming its holder) and checks, under the claim, that the directory may be written; returns the claim."""
  check_run(gin_file, output_dir, steps, metrics, resume, overwrite, time_budget, metric_workers)
  claim = output_lock.claim(output_dir)
  if os.path.exists(output_dir) and not (resume or overwrite):
    claim.release()
    raise UserError(f"output directory {output_dir} already exists; pass --resume to continue it or "
                    f"--overwrite to replace it")
  return claim


def check_writable(directory, purpose):
  """A UserError unless ``directory`` exists and takes new entries, or could be created; ``purpose`` names what
  it is for in the message."""
  existing = directory
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f"cannot create {purpose}: {existing} is a file, not a directory")
  try:
    os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-test-"))
  except OSError as e:
    raise UserError(f"cannot create {purpose}: {existing} is not writable ({e.strerror})") from e
