"""The scalars a training run logged (its TensorBoard summaries under ``model/tf_checkpoint``), read back as
series: for the training-curve pictures, the study's curves and anything else that plots a run."""

import os

import tensorflow as tf


def read_events(path):
  """The Event protos of one event file; a file cut short (a killed run) yields what was written whole."""
  records = iter(tf.data.TFRecordDataset(path))
  while True:
    try:
      record = next(records)
    except (StopIteration, tf.errors.DataLossError):
      return
    yield tf.compat.v1.Event.FromString(record.numpy())


def read_scalars(event_dir):
  """{tag: (steps, values)} from the TensorBoard event files in ``event_dir``; a step written twice (a resumed
  run repeats the steps after its last checkpoint) keeps its latest value."""
  latest = {}
  if not os.path.isdir(event_dir):
    return {}
  for name in sorted(os.listdir(event_dir)):
    if not name.startswith("events.out.tfevents"):
      continue
    for event in read_events(os.path.join(event_dir, name)):
      for value in event.summary.value:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
          number = float(value.simple_value)
        elif kind == "tensor" and tf.make_ndarray(value.tensor).size == 1:
          number = float(tf.make_ndarray(value.tensor))
        else:
          continue
        key = (value.tag, int(event.step))
        if key not in latest or event.wall_time >= latest[key][0]:
          latest[key] = (event.wall_time, number)
  series = {}
  for (tag, step), (_, number) in sorted(latest.items()):
    steps, values = series.setdefault(tag, ([], []))
    steps.append(step)
    values.append(number)
  return series
