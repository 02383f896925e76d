"""Shared command-line plumbing: gin parsing with one-line errors, and the error-to-exit-code rule."""

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


def one_line(error):
  """The message on one line, without the "In call to configurable ..." trail gin appends."""
  return " ".join(str(error).split("\n  In call to configurable")[0].split())


def main_guard(function, *args, **kwargs):
  """Runs ``function``; a UserError or a gin error becomes one ``error:`` line and exit status 2."""
  try:
    return function(*args, **kwargs)
  except UserError as e:
    print(f"error: {one_line(e)}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("error: interrupted; completed work is kept (training resumes with --resume)", file=sys.stderr)
    sys.exit(130)
