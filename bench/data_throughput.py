"""Observations per second when sampling batches from a loaded data set, as training does.

  python bench/data_throughput.py NAME [--batch_size 64] [--seconds 3]

Loads ``NAME`` through submission.data.named_data (from $DISENTANGLEMENT_LIB_DATA), then for about ``--seconds``
each times ``sample_observations(batch_size, random_state)`` called directly, and the input stream training reads
(``submission.train.batch_dataset``: float32 batches through tf.data, prefetched). Prints the load time, the batch
dtype and shape, and, as its last line, ``observations_per_s=<x> stream_observations_per_s=<y>``.
"""

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from submission import cli, train  # noqa: E402
from submission.data import named_data  # noqa: E402


def rate(next_batch, batch_size, seconds):
  """Observations per second from calling ``next_batch`` for about ``seconds``."""
  batches, start = 0, time.perf_counter()
  while True:
    next_batch()
    batches += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
      return batches * batch_size / elapsed


def measure(name, batch_size=64, seconds=3.0, seed=0):
  start = time.perf_counter()
  data = named_data.load(name)
  load_s = time.perf_counter() - start
  rs = np.random.RandomState(seed)
  batch = data.sample_observations(batch_size, rs)  # warm-up (first touch of the pages)
  print(f"dataset={name} load_s={load_s:.1f} batch={batch.dtype}{list(batch.shape)}", flush=True)
  direct = rate(lambda: data.sample_observations(batch_size, rs), batch_size, seconds)
  stream = iter(train.batch_dataset(data, batch_size, seed))
  next(stream)
  streamed = rate(lambda: next(stream), batch_size, seconds)
  print(f"observations_per_s={direct:.0f} stream_observations_per_s={streamed:.0f}")
  return direct, streamed


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("name")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--seconds", type=float, default=3.0)
  args = parser.parse_args()
  cli.main_guard(measure, args.name, args.batch_size, args.seconds)


if __name__ == "__main__":
  main()
