"""Shared command-line plumbing: gin parsing with one-line errors, and the error-to-exit-code rule."""

import contextlib
import sys

import gin

from submission.errors import UserError


@contextlib.contextmanager
def gin_config(config_files=None, bindings=None):
  """Parses gin files and bindings into a clean config, clearing it again afterwards."""
  gin.clear_config()
  try:
    try:
      gin.parse_config_files_and_bindings(list(config_files or []), list(bindings or []))
    except (ValueError, KeyError, TypeError, SyntaxError, IOError) as e:
      raise UserError(f"gin configuration: {one_line(e)}") from e
    yield
  finally:
    gin.clear_config()


def one_line(error):
  return " ".join(str(error).split())


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
