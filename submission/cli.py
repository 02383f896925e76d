"""Shared command-line plumbing: gin parsing with one-line errors, and the error-to-exit-code rule."""

import argparse
import contextlib
import os
import sys

import gin

from submission.errors import UserError

# gin ``include`` lines such as 'gin_configs/shared/dlib_study.gin' resolve from the repository root too.
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def gin_config(config_files=None, bindings=None):
  """Parses gin files and bindings into a clean config, clearing it again afterwards."""
  gin.clear_config()
  if REPOSITORY_ROOT not in gin.config._LOCATION_PREFIXES:  # pylint: disable=protected-access
    gin.add_config_file_search_path(REPOSITORY_ROOT)
  try:
    try:
      gin.parse_config_files_and_bindings(list(config_files or []), list(bindings or []))
    except (ValueError, KeyError, TypeError, SyntaxError, IOError) as e:
      raise UserError(f"gin configuration: {one_line(e)}") from e
    yield
  finally:
    gin.clear_config()


class ArgumentParser(argparse.ArgumentParser):
  """argparse whose usage errors are one ``error:`` line and exit status 2, instead of usage + message."""

  def error(self, message):
    fail(f"{message} (see {self.prog} --help)")


def add_gin_arguments(parser, output_help):
  """The options every pipeline step takes: repeatable --gin_config and --gin_bindings, --overwrite."""
  parser.add_argument("--gin_config", action="append", default=[], help="gin config file (repeatable)")
  parser.add_argument("--gin_bindings", action="append", default=[], nargs="+", help="gin bindings")
  parser.add_argument("--overwrite", action="store_true", help=f"replace an existing {output_help}")


def add_metric_bindings_arguments(parser, example="mig.num_train=1000"):
  """--metric_bindings (repeatable) and --no_representation_cache, which every metric command takes."""
  parser.add_argument("--metric_bindings", nargs="+", action="append", default=[],
                      help=f"extra gin bindings for every metric (e.g. {example})")
  parser.add_argument("--no_representation_cache", action="store_true",
                      help="encode every image each metric draws instead of each distinct observation once "
                      "(the same as the binding representation_cache.enabled = False)")


def metric_bindings(args):
  """The metric bindings of parsed arguments (see add_metric_bindings_arguments), flattened."""
  return flatten(args.metric_bindings) + (
      ["representation_cache.enabled = False"] if args.no_representation_cache else [])


def flatten(groups):
  """Options given as ``action="append", nargs="+"`` (lists of lists), flattened."""
  return [item for group in groups or [] for item in group]


def gin_bindings(args):
  """The --gin_bindings of parsed arguments, flattened."""
  return flatten(args.gin_bindings)


def format_duration(seconds):
  """H:MM:SS."""
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def parse_gin_text(text):
  """{"scope/selector.param": value text} of a gin config string as gin writes it (continued lines joined)."""
  values, key = {}, None
  for line in text.splitlines():
    if key is not None and line.startswith(" "):
      values[key] = (values[key] + " " + line.strip()).strip()
      continue
    key = None
    if line.startswith("#") or " = " not in line:
      continue
    name, value = line.split(" = ", 1)
    key = name.strip()
    values[key] = "" if value.strip() == "\\" else value.strip()
  return values


def one_line(error):
  """The message on one line, without the "In call to configurable ..." trail gin appends."""
  return " ".join(str(error).split("\n  In call to configurable")[0].split())


def main_guard(function, *args, **kwargs):
  """Runs ``function`` (argument parsing included, if it is inside); a UserError, or gin's complaint about a
  missing required binding, becomes one ``error:`` line and exit status 2."""
  try:
    return function(*args, **kwargs)
  except UserError as e:
    fail(e)
  except RuntimeError as e:
    if not str(e).startswith("Required bindings"):  # gin, when a configurable is called without one
      raise
    fail(f"gin configuration: {one_line(e)}")
  except KeyboardInterrupt:
    print("error: interrupted; completed work is kept (training resumes with --resume)", file=sys.stderr)
    sys.exit(130)


def fail(error):
  print(f"error: {one_line(error)}", file=sys.stderr)
  sys.exit(2)
