"""Is an output current for the configuration asked for now? The one check behind resuming training
(``submission.train``), skipping metrics already evaluated (``evaluation.batch`` and the pipeline) and continuing
a sweep point (``evaluation.sweep``).

Every step records what it was made with as {key: text}: the gin config of training
(``model/tf_checkpoint/train_config.gin``) and of each evaluation (``results/gin/evaluation.gin``), a sweep point's
definition (``sweep_point.json``). An output is current when no key differs, except the keys the caller lets change
(``may_change``: a key matches a pattern it starts or ends with, e.g. ``"train_loop."`` or ``".learning_rate"``).
"""

import functools

from submission import cli


def differences(recorded, wanted, may_change=(), default=None, keys=None):
  """[(key, recorded text, wanted text)] for each key whose text differs, in key order.

  ``keys``: the keys compared (default: those of either side). A key missing on one side reads as
  ``default(key)`` (default: None, i.e. "unset").
  """
  default = default or (lambda key: None)
  found = []
  for key in sorted(set(recorded) | set(wanted) if keys is None else keys):
    if any(key.startswith(pattern) or key.endswith(pattern) for pattern in may_change):
      continue
    old = recorded[key] if key in recorded else default(key)
    new = wanted[key] if key in wanted else default(key)
    if old != new:
      found.append((key, old, new))
  return found


def describe(found, limit=3):
  """'k was a, now b; ...' for the first ``limit`` differences (and how many more)."""
  shown = "; ".join(f"{key} was {'unset' if old is None else old}, now {'unset' if new is None else new}"
                    for key, old, new in found[:limit])
  return shown + (f" (and {len(found) - limit} more)" if len(found) > limit else "")


def read_gin_record(path):
  """{key: value text} of a recorded gin config file."""
  with open(path) as f:
    return cli.parse_gin_text(f.read())


@functools.lru_cache(maxsize=None)
def gin_default_text(key):
  """The text gin records for a parameter nobody bound: its default as gin formats it; None if unknown.

  gin has no public "default of a parameter"; these are the calls its operative config uses.
  """
  import gin  # pylint: disable=import-outside-toplevel
  try:
    parsed = gin.config.ParsedBindingKey.parse(key)
    configurable = gin.config._REGISTRY[parsed.complete_selector]  # pylint: disable=protected-access
    defaults = gin.config._get_default_configurable_parameter_values(  # pylint: disable=protected-access
        configurable.wrapped, configurable.allowlist, configurable.denylist)
    if parsed.arg_name not in defaults:
      return None
    with cli.gin_config():
      with gin.unlock_config():
        gin.bind_parameter(key, defaults[parsed.arg_name])
      return cli.parse_gin_text(gin.config_str()).get(key)
  except (ValueError, KeyError, AttributeError, TypeError):
    return None
