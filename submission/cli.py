"""Shared command-line plumbing: gin parsing with one-line errors, and the error-to-exit-code rule."""

import argparse
import contextlib
import io
import logging
import math
import os
import signal
import sys
import threading
import tokenize

import gin

from submission.errors import UserError

# gin ``include`` lines such as 'gin_configs/shared/dlib_study.gin' resolve from the repository root too.
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def gin_config(config_files=None, bindings=None):
  """Parses gin files and bindings into a clean config, clearing it again afterwards."""
  check_not_empty("a gin binding", bindings or [])
  for path in config_files or []:
    check_gin_file(path)
  gin.clear_config()
  if REPOSITORY_ROOT not in gin.config._LOCATION_PREFIXES:  # pylint: disable=protected-access
    gin.add_config_file_search_path(REPOSITORY_ROOT)
  try:
    logging.disable(logging.ERROR)  # gin logs each path it tried for a missing include; the error names them
    try:
      gin.parse_config_files_and_bindings(list(config_files or []), list(bindings or []))
    except (ValueError, KeyError, TypeError, SyntaxError, IOError, tokenize.TokenError) as e:
      # gin reads the bindings as one text, so an unclosed bracket ('vae.beta = [1.,') swallows the bindings after
      # it, and the error names one of those, or the end of the text (TokenError).
      unclosed = next((f"binding {b!r}" for b in bindings or [] if not tokenizes(b)), None) or next(
          (f"gin config {path}" for path in config_files or [] if not tokenizes(read_text(path))), None)
      if unclosed:
        raise UserError(f"gin configuration: {unclosed} has an unclosed bracket or quote") from e
      raise UserError(f"gin configuration: {one_line(e)}") from e
    finally:
      logging.disable(logging.NOTSET)
    yield
  finally:
    gin.clear_config()


def tokenizes(text):
  """Whether Python's tokenizer, which gin's parser uses, reads ``text`` to its end (no unclosed bracket)."""
  try:
    for _ in tokenize.generate_tokens(io.StringIO(text).readline):
      pass
  except (tokenize.TokenError, SyntaxError):
    return False
  return True


def read_text(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


INT64_MAX = 2**63 - 1  # TensorFlow's step counter is an int64


def check_integer(name, value, minimum=1, maximum=INT64_MAX):
  """A UserError unless ``value`` (of the gin parameter or option ``name``) is an integer in [minimum, maximum]:
  a float (20.5 steps, 1e9) or a value out of range would otherwise fail deep inside TensorFlow, or not at all."""
  if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
    bound = f"at least {minimum}" if maximum == INT64_MAX else f"from {minimum} to {maximum}"
    raise UserError(f"{name} must be an integer {bound}, got {value!r}")
  return value


def check_positive_number(name, value, or_zero=False):
  """A UserError unless ``value`` is a finite number above 0, or 0 too if ``or_zero`` (a NaN or negative rate
  trains nothing useful)."""
  if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
      or value < 0 or (value == 0 and not or_zero)):
    raise UserError(f"{name} must be a {'non-negative' if or_zero else 'positive'} finite number, got {value!r}")
  return value


def check_gin_file(path):
  """A UserError naming ``path`` unless it is a gin file gin can read: text in UTF-8 without a byte-order mark
  (gin reads one as an unexpected token, a binary file as a codec error, neither naming the file) and not empty
  (which would leave every parameter at its default, or fail later on a missing one)."""
  if not os.path.isfile(path):
    raise UserError(f"gin config {path} does not exist")
  with open(path, "rb") as f:
    content = f.read()
  if content.startswith(b"\xef\xbb\xbf"):
    raise UserError(f"gin config {path} starts with a byte-order mark, which gin cannot read; save it as UTF-8 "
                    f"without one")
  try:
    text = content.decode("utf-8")
  except UnicodeDecodeError as e:
    raise UserError(f"gin config {path} is not a text file (not UTF-8 at byte {e.start})") from e
  if "\0" in text:
    raise UserError(f"gin config {path} is not a text file (it holds NUL bytes)")
  if not any(line.strip() and not line.strip().startswith("#") for line in text.splitlines()):
    raise UserError(f"gin config {path} is empty: it binds nothing")


def check_not_empty(what, values):
  """A UserError when one of ``values`` is empty or blank: an empty option would otherwise fall back to a default
  (``--dataset ''`` to the gin file's data set) or bind nothing, silently."""
  for value in values:
    if value is not None and not str(value).strip():
      raise UserError(f"{what} is empty; give a value or leave the option out")


def binding_key(binding):
  """gin's ParsedBindingKey of a ``[scope/]configurable.parameter = value`` binding; None for anything else (an
  ``include``, an ``import``, a macro)."""
  key = binding.split("=", 1)[0].strip()
  if "=" not in binding or not key or key.startswith("%") or " " in key:
    return None
  try:
    return gin.config.ParsedBindingKey.parse(key)
  except ValueError:
    return None  # an unknown configurable: gin's parser has refused it already


def check_bindings_take_effect(bindings):
  """A UserError for the first of ``bindings`` that changes nothing in the configurables called so far (call it once
  they all have been: gin's operative config records each call's scope): its configurable is never called (in its
  scope), or a binding in a more specific scope wins wherever it is called (``vae/AdamOptimizer.learning_rate``
  over ``AdamOptimizer.learning_rate``).

  A binding of a configurable with nothing to call it would otherwise be recorded in the run's config as if it had
  shaped the model (``factor_vae.gamma`` on a β-VAE), or be silently outvoted by the config file's scoped one.
  """
  # pylint: disable=protected-access
  bound, called = gin.config._CONFIG, list(gin.config._OPERATIVE_CONFIG)
  for binding in bindings:
    key = binding_key(binding)
    if key is None:
      continue
    scope, selector, name = key.scope, key.complete_selector, key.arg_name
    short = f"{scope + '/' if scope else ''}{key.given_selector}.{name}"
    call_scopes = [s for s, c in called if c == selector and (not scope or s == scope or s.startswith(scope + "/"))]
    if not call_scopes:
      raise UserError(f"binding {short!r} has no effect: this model never calls {key.given_selector}"
                      f"{f' in scope {scope}' if scope else ''} (a parameter of another model or step?)")
    winners = set()
    for call_scope in call_scopes:
      parts = call_scope.split("/") if call_scope else []
      depth = len(scope.split("/")) if scope else 0
      winner = next(("/".join(parts[:i]) for i in range(len(parts), depth, -1)
                     if name in bound.get(("/".join(parts[:i]), selector), {})), None)
      if winner is None:
        break  # effective in this scope
      winners.add(winner)
    else:
      names = " and ".join(f"{w}/{key.given_selector}.{name}" for w in sorted(winners))
      raise UserError(f"binding {short!r} has no effect: the config's {names} wins wherever "
                      f"{key.given_selector} is called; bind that instead")


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


class Terminated(KeyboardInterrupt):
  """SIGTERM (a grader stopping a container at its time limit, ``kill``), raised like Ctrl-C's KeyboardInterrupt
  so that the same handlers keep the work (training writes a checkpoint at the current step)."""


def _raise_terminated(signum, frame):
  del signum, frame
  raise Terminated()


def main_guard(function, *args, **kwargs):
  """Runs ``function`` (argument parsing included, if it is inside); a UserError, or gin's complaint about a
  missing required binding, becomes one ``error:`` line and exit status 2. Ctrl-C and SIGTERM stop it with one
  line and 130 / 143, after what is running has kept its work."""
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    return function(*args, **kwargs)
  except UserError as e:
    fail(e)
  except RuntimeError as e:
    if not str(e).startswith("Required bindings"):  # gin, when a configurable is called without one
      raise
    fail(f"gin configuration: {one_line(e)}")
  except KeyboardInterrupt as e:
    terminated = isinstance(e, Terminated)
    # No hint to --resume here: batch and sweep have none (a re-run continues them), and training says it itself.
    print(f"error: {'terminated (SIGTERM)' if terminated else 'interrupted'}; completed work is kept",
          file=sys.stderr)
    sys.exit(128 + (signal.SIGTERM if terminated else signal.SIGINT))


def fail(error):
  print(f"error: {one_line(error)}", file=sys.stderr)
  sys.exit(2)
