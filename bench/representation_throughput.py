"""Representation throughput: the exported ``representation`` signature vs the bare encoder.

    python bench/representation_throughput.py [--model beta_vae] [--batches 200] [--batch_size 64]

Builds the model of gin_configs/<MODEL>.gin (untrained: speed does not depend on the weights), exports it and
postprocesses it to a mean representation exactly as the pipeline does, then times

* the exported module as evaluation calls it: a NumPy batch in, ``signature(images=...)["default"]`` out, back to
  NumPy (``evaluation.evaluate.load_representation_function``), with batches of 64 as the BetaVAE and FactorVAE
  metrics use;
* the bare encoder: the same network (trunk + latent heads + representation) as one compiled function on a tensor
  already in memory.

The two are timed in alternating blocks of 10 batches (the speed of this shared machine drifts within a minute).
Prints as its last line ``images_per_s=<x> bare_images_per_s=<y>``.
"""

import argparse
import os
import tempfile
import time

import gin
import numpy as np
import tensorflow as tf

from disentanglement_lib.utils import resources  # noqa: E402
from evaluation import evaluate  # noqa: E402
from submission import cli, export, postprocess, train  # noqa: E402,F401  (train registers every configurable)

MEAN_CONFIG = "config/unsupervised_study_v1/postprocess_configs/mean.gin"


def interleaved_seconds(calls, repeat, block=10):
  """Seconds each of ``calls`` (name: (function, batches)) takes for ``repeat`` calls, timed in alternating blocks
  of ``block`` calls so that the machine's drifting speed affects all alike."""
  for function, batches in calls.values():
    function(batches[0])  # trace / warm up
  seconds = dict.fromkeys(calls, 0.)
  for first in range(0, repeat, block):
    for name, (function, batches) in calls.items():
      start = time.perf_counter()
      for i in range(first, min(first + block, repeat)):
        function(batches[i % len(batches)])
      seconds[name] += time.perf_counter() - start
  return seconds


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", default="beta_vae")
  parser.add_argument("--batches", type=int, default=200)
  parser.add_argument("--batch_size", type=int, default=64)
  args = parser.parse_args(argv)

  gin_file = os.path.join(cli.REPOSITORY_ROOT, "gin_configs", args.model + ".gin")
  rng = np.random.RandomState(0)
  numpy_batches = [(rng.uniform(size=(args.batch_size, 64, 64, 1)) > 0.8).astype(np.float32) for _ in range(8)]
  with tempfile.TemporaryDirectory() as root:
    model_dir, representation_dir = os.path.join(root, "model"), os.path.join(root, "mean")
    with cli.gin_config([gin_file], ["dataset.name = 'dummy_data'"]):
      model = gin.query_parameter("model.model").scoped_configurable_fn()
      model.build([64, 64, 1])
      export.export_model(model, os.path.join(model_dir, "tfhub"))
      os.makedirs(os.path.join(model_dir, "results", "gin"))
      with open(os.path.join(model_dir, "results", "gin", "train.gin"), "w") as f:
        f.write("dataset.name = 'dummy_data'\n")
    postprocess.postprocess_with_gin(model_dir, representation_dir,
                                     gin_config_files=[resources.get_file(MEAN_CONFIG)])
    representation_function = evaluate.load_representation_function(representation_dir)
    bare = tf.function(lambda images: model.latent.representation(model.encode(images)))
    tensor_batches = [tf.constant(b) for b in numpy_batches]
    seconds = interleaved_seconds({"exported": (representation_function, numpy_batches),
                                   "bare": (lambda b: bare(b).numpy(), tensor_batches)}, args.batches)
    exported_seconds, bare_seconds = seconds["exported"], seconds["bare"]

  images = args.batches * args.batch_size
  print(f"model={args.model} batch_size={args.batch_size} batches={args.batches} "
        f"ratio={bare_seconds / exported_seconds:.3f}")
  print(f"images_per_s={images / exported_seconds:.0f} bare_images_per_s={images / bare_seconds:.0f}")


if __name__ == "__main__":
  main()
