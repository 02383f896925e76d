"""The checks of a pipeline run that need no TensorFlow, so that a command line answers a typo in about a second
(importing TensorFlow costs 10-15 s), and the default number of metrics evaluated at once."""

import os

from evaluation import workers
from submission import cli, output_lock
from submission.disk_checks import check_writable
from submission.errors import UserError
from evaluation.metrics.table import DEFAULT_METRICS, metric_config

# Metrics evaluated at once, each in its own process with cores/N threads (bench/metric_suite.py measures the
# suite with 1 and 2 workers; on 2 cores DCI's boosting runs beside the others).
DEFAULT_METRIC_WORKERS = min(2, workers.cpu_count())
NAME_MAX = 255  # bytes in one path component, on every file system Linux uses for this


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
  check_output_path(output_dir)
  # The output's parent receives the temporary siblings an output is written to (and an --overwrite's new run)
  # and the output's lock.
  check_writable(os.path.dirname(os.path.abspath(output_dir)), f"output directory {output_dir}")


# What the longest sibling of an output adds to its name: ".<name>.partial-12345678" (submission.atomic).
SIBLING_EXTRA = len("..partial-12345678")


def check_output_path(output_dir):
  """A UserError for an output path that cannot be made: a symbolic link to nothing (makedirs would fail on it)
  or a component longer than the file system allows, the last one with room for its temporary siblings."""
  if os.path.islink(output_dir) and not os.path.exists(output_dir):
    raise UserError(f"output directory {output_dir} is a symbolic link to {os.readlink(output_dir)}, which does "
                    f"not exist; remove the link or create its target")
  parts = [part for part in os.path.abspath(output_dir).split(os.sep) if part]
  for index, part in enumerate(parts):
    allowed = NAME_MAX - (SIBLING_EXTRA if index == len(parts) - 1 else 0)
    if len(part.encode()) > allowed:
      raise UserError(f"output directory {output_dir}: the name {part[:20]}... is {len(part.encode())} bytes long; "
                      f"at most {allowed} fit ({NAME_MAX} is the file system's limit)")


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
