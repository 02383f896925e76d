"""Time up front: the pipeline's estimate of the whole job after the first logged training steps, and the
``--quick`` preset for a first look on a CPU.

The estimate is training (the remaining steps at the logged rate) plus the metric suite's encoding: each metric
config encodes a known number of images (from its sample-size bindings, as dlib's metric functions draw them),
at a rate taken from the training speed. Encoding one image costs about a tenth of training on one (measured
here: ``bench/representation_throughput.py`` encodes 5,221 images/s where ``bench/train_throughput.py`` trains
7.7-8.4 steps/s of 64 images, 490-540 images/s). The metrics' own model fits (DCI's boosted trees, BetaVAE's
logistic regression) are not included, so the metric time is a lower bound.
"""

from evaluation.metrics import table
from submission import cli

QUICK_PRESET = "quick"
QUICK_STEPS = 3000
# Every metric's quick bindings (the table's): about a fiftieth of dlib's sample sizes.
QUICK_METRIC_BINDINGS = table.QUICK_METRIC_BINDINGS
ENCODED_PER_TRAINED_IMAGE = 10.  # encoding vs training throughput, per image (see the module docstring)


def describe_quick(steps=QUICK_STEPS):
  return (f"[quick] preset for a first look: {steps} training steps and small metric samples "
          f"({', '.join(QUICK_METRIC_BINDINGS)}); scores are marked \"quick\" and are not comparable to dlib-size "
          f"scores")


def encoded_images(settings):
  """Images a metric encodes, from its gin ``settings`` ({key: gin text}); None for a metric not modelled."""
  function = settings.get("evaluation.evaluation_fn", "").lstrip("@")
  return table.encoded_images(function, lambda parameter: settings[f"{function}.{parameter}"])


def metric_settings(config_file, bindings):
  """{key: gin text} of a metric config file with ``bindings`` applied after it, as evaluation parses them (the
  metric configurables must be registered: ``evaluation.evaluate`` imported). Must not run inside another gin
  config."""
  import gin  # pylint: disable=import-outside-toplevel
  with cli.gin_config([config_file], list(bindings)):
    return cli.parse_gin_text(gin.config_str())


class JobEstimate:
  """Prints the whole job's estimate once (``on_log`` of the training loop), at the second logged window: the
  first one includes compiling the training step, which would inflate the estimate many times over."""

  def __init__(self, metric_configs, metric_bindings, batch_size, has_gpu):
    counts = {metric: encoded_images(metric_settings(config, metric_bindings))
              for metric, config in metric_configs.items()}
    self.encoded = sum(n for n in counts.values() if n)
    self.unmodelled = [metric for metric, n in counts.items() if n is None]
    self.batch_size = batch_size
    self.has_gpu = has_gpu
    self.windows = 0

  def message(self, step, rate, total):
    training = (total - step) / max(rate, 1e-9)
    encoding = self.encoded / max(rate * self.batch_size * ENCODED_PER_TRAINED_IMAGE, 1e-9)
    unmodelled = f"; not estimated: {', '.join(self.unmodelled)}" if self.unmodelled else ""
    lines = [f"[estimate] whole job about {cli.format_duration(training + encoding)}: training to step {total} "
             f"{cli.format_duration(training)} at {rate:.1f} steps/s, then metrics at least "
             f"{cli.format_duration(encoding)} (encoding {self.encoded:,} images; model fits not included"
             f"{unmodelled})"]
    if not self.has_gpu:
      lines.append(f"[estimate] no GPU: for a first look use --quick ({QUICK_STEPS} steps, small metric samples), "
                   f"or shorten with --steps N and --metric_bindings (e.g. mig.num_train=1000)")
    return "\n".join(lines)

  def __call__(self, step, rate, total):
    self.windows += 1
    if self.windows == 2:
      print(self.message(step, rate, total), flush=True)
