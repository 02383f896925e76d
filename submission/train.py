"""Training: dlib's ``train_with_gin`` / ``model`` configurable on TF2, with checkpoints, resume and progress.

    python -m submission.train --model_dir DIR --gin_config FILE [--gin_bindings B ...] [--overwrite] [--resume]

Writes, as dlib does: ``DIR/tf_checkpoint`` (checkpoints and TensorBoard summaries), ``DIR/tfhub`` (the
SavedModel, see ``submission.export``) and ``DIR/results/{gin,json,aggregate}`` with the train results
(``reconstruction_loss``, ``elbo``, ``regularizer``, ``kl_loss``, ``loss`` averaged over ``model.eval_steps``
batches after training, plus ``global_step``, ``elapsed_time``, ``uuid``).

Reproducibility and resume: batch i of the input stream is drawn with ``RandomState([data_seed, i])`` and the
model's noise at step s with a stateless seed folded from ``model.random_seed`` and s, so a run resumed from a
checkpoint continues exactly as the uninterrupted run would.
"""

import contextlib
import errno
import glob
import os
import shutil
import signal
import sys
import threading
import time

import gin
import keras
import numpy as np
import tensorflow as tf

from submission import architectures, cli, config_record, export, losses, optimizers  # noqa: F401  (configurables)
from submission import model_card, output_lock, summary_images
from submission import models  # registers every model configurable; models.base.dtype_policy below
from submission.data import named_data
from submission.data.batches import OBSERVATIONS
from submission.atomic import atomic_directory, atomic_file
from submission.errors import UserError
from submission.layout import CHECKPOINT_DIR, EXPORT_DIR, RESULTS_DIR
from submission.results import check_output_dir, write_results



class TrainingDiverged(UserError):
  """The loss became NaN or infinite."""


@gin.configurable("train_loop")
def loop_settings(checkpoint_every_steps=1000, log_every_steps=100, time_budget_seconds=None,
                  prefetch_batches=4, mixed_precision=False):
  """Training-loop settings beyond dlib's (which had none): checkpoint and log intervals, a time budget, and
  mixed precision (float16 compute in the networks; worth it on GPUs with tensor cores, not on CPUs)."""
  for name, value in (("checkpoint_every_steps", checkpoint_every_steps), ("log_every_steps", log_every_steps),
                      ("prefetch_batches", prefetch_batches)):
    cli.check_integer(f"train_loop.{name}", value)
  if time_budget_seconds is not None:
    # 0 is run.sh's budget when setting up took all of it: training stops after its first step.
    cli.check_positive_number("train_loop.time_budget_seconds", time_budget_seconds, or_zero=True)
  return dict(checkpoint_every_steps=checkpoint_every_steps, log_every_steps=log_every_steps,
              time_budget_seconds=time_budget_seconds, prefetch_batches=prefetch_batches,
              mixed_precision=mixed_precision)


# What a resumed run may change: the length of training, the loop's settings and the learning rate (so a run
# that diverged can continue from its last good checkpoint with a smaller one). Anything else would make the
# result neither the old run nor the new one.
RESUMABLE_CHANGES = ("model.training_steps", "model.eval_steps", "train_loop.", ".learning_rate")
CONFIGURATION_RECORD = "train_config.gin"


def check_same_configuration(model_dir):
  """Raises a UserError when the active gin config differs from the one ``model_dir`` was trained with."""
  record = os.path.join(model_dir, CHECKPOINT_DIR, CONFIGURATION_RECORD)
  if not os.path.exists(record):
    return
  found = config_record.differences(config_record.read_gin_record(record), cli.parse_gin_text(gin.config_str()),
                                    may_change=RESUMABLE_CHANGES)
  if found:
    raise UserError(f"{model_dir} was trained with another configuration: {config_record.describe(found)}. Resume "
                    f"with the same configuration, or pass --overwrite to start again")


def check_checkpoint(model_dir):
  """A UserError, before anything is changed, when ``model_dir``'s training cannot be continued: its last
  checkpoint's files are gone, or it finished training and has no checkpoint at all (starting again from step 0
  would not continue it). A run stopped before its first checkpoint has nothing to lose and simply starts."""
  directory = os.path.join(model_dir, CHECKPOINT_DIR)
  state = tf.train.get_checkpoint_state(directory)
  if state and state.model_checkpoint_path:
    path = state.model_checkpoint_path
    if not (os.path.isfile(path + ".index") and glob.glob(glob.escape(path) + ".data-*")):
      raise UserError(f"no checkpoint to resume {model_dir} from: {path}.index or its data file is missing; "
                      f"nothing was changed. Pass --overwrite to train it again")
  elif os.path.exists(os.path.join(model_dir, EXPORT_DIR)) or os.path.exists(os.path.join(model_dir, RESULTS_DIR)):
    raise UserError(f"no checkpoint to resume {model_dir} from ({directory} holds none); nothing was changed. "
                    f"Pass --overwrite to train it again")


@contextlib.contextmanager
def full_disk_named(path, what, needed=None):
  """A full disk while writing ``what`` under ``path`` becomes one UserError naming the path, the space it needs
  (when known) and the space free. TensorFlow reports ENOSPC as ResourceExhaustedError, not OSError."""
  try:
    yield
  except (tf.errors.ResourceExhaustedError, OSError) as e:
    if isinstance(e, OSError) and e.errno != errno.ENOSPC:
      raise
    free = shutil.disk_usage(path if os.path.exists(path) else os.path.dirname(path)).free
    size = f"it needs about {needed / 1e6:.0f} MB, " if needed else ""
    raise UserError(f"no space left on the device of {path} for {what}: {size}{free / 1e6:.0f} MB are free "
                    f"({cli.one_line(e)[:120]})") from e


def record_configuration(model_dir):
  with atomic_file(os.path.join(model_dir, CHECKPOINT_DIR, CONFIGURATION_RECORD)) as f:
    f.write(gin.config_str())


def batch_dataset(data, batch_size, seed, first_batch=0, num_batches=None, prefetch=4, kind=OBSERVATIONS):
  """Whole batches of ``kind`` (``submission.data.batches``: observations, or pairs for the weak models) drawn
  from a GroundTruthData (vectorised), prefetched off the training thread.

  Batch i is drawn with ``RandomState([seed, i])``, so a stream started at ``first_batch`` continues another
  exactly. tf.data's autotuning is switched off: the buffer size is explicit and the map sequential, so it had
  nothing to tune, yet its model thread made deleting the iterator (which the loop does when it stops) block for
  1-10 s while holding the GIL. A map over batch indices rather than ``Dataset.from_generator`` keeps the batch
  index explicit and avoids from_generator's finalisation at exit.
  """
  signature = kind.signature(data, batch_size)
  specs = tf.nest.flatten(signature)

  def draw(index):
    random_state = np.random.RandomState([seed % 2**32, int(index)])
    return tf.nest.flatten(kind.sample(data, batch_size, random_state))

  def load(index):
    arrays = tf.numpy_function(draw, [index], [spec.dtype for spec in specs], stateful=False)
    return tf.nest.pack_sequence_as(signature, [tf.ensure_shape(a, spec.shape) for a, spec in zip(arrays, specs)])

  end = first_batch + num_batches if num_batches is not None else np.iinfo(np.int64).max
  batches = tf.data.Dataset.range(first_batch, end).map(load)
  options = tf.data.Options()
  options.autotune.enabled = False
  return batches.prefetch(prefetch).with_options(options)


def configure_devices():
  """Memory growth on every GPU (must run before TensorFlow initialises them); returns a description."""
  gpus = tf.config.list_physical_devices("GPU")
  for gpu in gpus:
    try:
      tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # already initialised by an earlier step in this process: growth was set then
      pass
  return f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU"


def train_with_gin(model_dir, overwrite=False, gin_config_files=None, gin_bindings=None, resume=False, on_log=None):
  """Parses the gin config, trains, exports and writes results; the gin config is cleared afterwards."""
  with output_lock.claim(model_dir), cli.gin_config(gin_config_files, gin_bindings):
    return train(model_dir, overwrite, resume=resume, on_log=on_log, bindings=gin_bindings)


@gin.configurable("model", denylist=["model_dir", "overwrite", "resume", "on_log", "bindings"])
def train(model_dir, overwrite=False, model=gin.REQUIRED, training_steps=gin.REQUIRED, random_seed=gin.REQUIRED,
          batch_size=gin.REQUIRED, eval_steps=1000, name="", model_num=None, resume=False, on_log=None,
          bindings=()):
  """dlib's ``model`` configurable. ``name`` and ``model_num`` are only recorded, as in dlib. ``on_log(step,
  steps_per_second, training_steps)`` is called at each logged step (the pipeline's time estimate). ``bindings``
  (the command line's) must each take effect, else nothing is written (``cli.check_bindings_take_effect``)."""
  del name, model_num
  # Before anything is written: a bad value would otherwise fail after the output directory was started (a
  # batch size of 0 left a configuration record that refused the corrected rerun) or be rounded silently.
  # training_steps = 0 exports the initialised model (its losses before training, as tests compare).
  cli.check_integer("model.training_steps", training_steps, minimum=0)
  for parameter, value in (("batch_size", batch_size), ("eval_steps", eval_steps)):
    cli.check_integer(f"model.{parameter}", value)
  cli.check_integer("model.random_seed", random_seed, minimum=0, maximum=2**32 - 1)  # NumPy's seed range
  start = time.time()
  device = configure_devices()
  resuming = resume and os.path.isdir(model_dir)
  if resuming:
    check_same_configuration(model_dir)
    check_checkpoint(model_dir)
  else:
    check_output_dir(model_dir, overwrite)
  if not resuming and os.path.exists(model_dir):
    # --overwrite: dlib deleted the old model first; here it stays until the new one is complete beside it.
    with atomic_directory(model_dir) as new_model_dir:
      return train(new_model_dir, bindings=bindings)
  settings = loop_settings()
  data = named_data.load()
  random_state = np.random.RandomState(random_seed)
  train_seed, eval_seed = random_state.randint(2**32), random_state.randint(2**32)
  keras.utils.set_random_seed(random_seed)
  build_model(model, data.observation_shape, settings["mixed_precision"])
  print(f"[train] {type(model).__name__} on {named_data.dataset_name()} "
        f"({'x'.join(map(str, data.observation_shape))}), {training_steps} steps, batch {batch_size}, "
        f"device {device}", flush=True)

  loop = TrainingLoop(model, model_dir, random_seed)
  loop.trace(model.batches.signature(data, batch_size))
  loop.images = summary_images.checkpoint_images(model, data, eval_seed)
  loop.on_log = on_log
  cli.check_bindings_take_effect(bindings or ())  # every configurable of the model has been called by now
  if not os.path.exists(os.path.join(model_dir, CHECKPOINT_DIR, CONFIGURATION_RECORD)):
    record_configuration(model_dir)  # once the model could be built: a bad config leaves no directory behind
  if resume:
    loop.restore()
  stream = batch_dataset(data, batch_size, train_seed, first_batch=loop.iteration(),
                         prefetch=settings["prefetch_batches"], kind=model.batches)
  loop.run(stream, training_steps, settings, start)

  with full_disk_named(os.path.join(model_dir, EXPORT_DIR), "the SavedModel", export.saved_model_bytes(model)):
    export.export_model(model, os.path.join(model_dir, EXPORT_DIR))
  with open(os.path.join(model_dir, CHECKPOINT_DIR, CONFIGURATION_RECORD)) as f:
    model_card.ModelCard.of(model, named_data.dataset_name(), losses.reconstruction_activation(), f.read()).write(
        model_dir)
  results = loop.evaluate(batch_dataset(data, batch_size, eval_seed, num_batches=eval_steps, kind=model.batches))
  results["global_step"] = int(loop.global_step.numpy())
  results["elapsed_time"] = time.time() - start
  write_results(os.path.join(model_dir, RESULTS_DIR), "train", results)
  print(f"[train] done in {results['elapsed_time']:.0f}s: " + format_terms(results), flush=True)
  return results


def build_model(model, observation_shape, mixed_precision=False):
  """Builds the model, under Keras' mixed_float16 policy when asked (the policy is restored afterwards)."""
  with models.base.dtype_policy("mixed_float16" if mixed_precision else keras.mixed_precision.dtype_policy()):
    model.build(observation_shape)


class TrainingLoop:
  """Compiled training iterations, checkpoints, summaries and progress for one model."""

  def __init__(self, model, model_dir, random_seed):
    self.model = model
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    self.first_bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="first_bad_step")
    self.base_seed = tf.constant([random_seed, 0x5EED], dtype=tf.int64)
    self.checkpoint = tf.train.Checkpoint(global_step=self.global_step, **model.checkpoint_items())
    self.checkpoint_dir = os.path.join(model_dir, CHECKPOINT_DIR)
    self.manager = tf.train.CheckpointManager(self.checkpoint, self.checkpoint_dir, max_to_keep=1,
                                              checkpoint_name="model.ckpt")
    self.writer = None
    self.images = None  # summary_images.CheckpointImages, written at each checkpoint
    self.on_log = None
    self.train_iteration = tf.function(self._train_iteration)

  def iteration(self):
    return int(self.global_step.numpy()) // self.model.steps_per_iteration

  def trace(self, batch_signature):
    """Compiles the training iteration for batches of ``batch_signature``, so that a hyper-parameter the model
    cannot use (a string for a number) fails before anything is written."""
    try:
      self.train_iteration.get_concrete_function(batch_signature)
    except (TypeError, ValueError) as e:
      last_line = str(e).strip().splitlines()[-1].strip()
      raise UserError(f"the model cannot be trained with this configuration: {last_line} (check the gin "
                      f"bindings)") from e

  def constant_learning_rates(self):
    """The learning-rate variables of the model's optimizers (a schedule holds no state of its own)."""
    return [item.learning_rate for item in self.model.checkpoint_items().values()
            if isinstance(item, keras.optimizers.Optimizer) and isinstance(item.learning_rate, keras.Variable)]

  def restore(self):
    if self.manager.latest_checkpoint:
      # The checkpoint holds the learning rates it was trained with; the configured ones win, so that a run that
      # diverged can continue from its last good checkpoint with a smaller rate.
      configured = [(rate, rate.numpy()) for rate in self.constant_learning_rates()]
      try:
        self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
      except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise UserError(f"{self.manager.latest_checkpoint} does not fit this model ({cli.one_line(e)[:200]}); "
                        f"resume with the configuration it was trained with, or pass --overwrite") from e
      for rate, value in configured:
        rate.assign(value)
      print(f"[train] resumed from {self.manager.latest_checkpoint} (step {int(self.global_step.numpy())})",
            flush=True)

  def step_seed(self, step):
    return tf.random.experimental.stateless_fold_in(self.base_seed, step)

  def _train_iteration(self, images):
    step = self.global_step.read_value()
    terms = self.model.train_step(images, self.step_seed(step), tf.cast(step, tf.float32))
    newly_bad = tf.logical_and(tf.logical_not(terms.pop("finite")), self.first_bad_step < 0)
    self.first_bad_step.assign(tf.where(newly_bad, step, self.first_bad_step))
    self.global_step.assign_add(self.model.steps_per_iteration)
    return terms

  def check_finite(self):
    bad = int(self.first_bad_step.numpy())
    if bad >= 0:
      kept = (f"the last good checkpoint ({self.manager.latest_checkpoint}) is kept"
              if self.manager.latest_checkpoint else "no checkpoint had been written yet")
      raise TrainingDiverged(f"training stopped: the loss became NaN or infinite at step {bad}; {kept}. "
                             f"Lower the learning rate or check the data and the gin bindings.")

  def save(self):
    self.check_finite()
    step = int(self.global_step.numpy())
    kept = (f"; the last complete checkpoint ({self.manager.latest_checkpoint}) is kept"
            if self.manager.latest_checkpoint else "")
    with full_disk_named(self.checkpoint_dir, f"the checkpoint of step {step}{kept}", self.checkpoint_bytes()):
      self.manager.save(checkpoint_number=self.global_step)
    if self.images:
      self.images.write(self.summary_writer(), int(self.global_step.numpy()))

  def checkpoint_bytes(self):
    """The size of a checkpoint: every variable it holds (weights and the optimizers' state)."""
    return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in self.checkpoint_variables())

  def checkpoint_variables(self):
    found = {}
    for item in self.model.checkpoint_items().values():
      for variable in getattr(item, "variables", ()):
        found[id(variable)] = variable
    return list(found.values())

  def summary_writer(self):
    if self.writer is None:
      self.writer = tf.summary.create_file_writer(self.checkpoint_dir)
    return self.writer

  def log(self, terms, rate, eta, total):
    step = int(self.global_step.numpy())
    values = {k: float(v) for k, v in terms.items()}
    with self.summary_writer().as_default(step=step):
      for key, value in values.items():
        tf.summary.scalar(key, value)
      tf.summary.scalar("steps_per_second", rate)
    print(f"[train] step {step}/{total} ({100. * step / total:.1f}%) {rate:.1f} steps/s "
          f"ETA {cli.format_duration(eta)} | {format_terms(values)}", flush=True)
    if self.on_log:
      self.on_log(step, rate, total)

  def run(self, stream, training_steps, settings, start):
    """Trains until ``training_steps``; checkpoints every N steps and at the end; honours a time budget."""
    try:
      self._run(stream, training_steps, settings, start)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through cli.main_guard: keep the steps made since the last one
      self.save_on_interrupt()
      raise

  def save_on_interrupt(self):
    """A checkpoint at the current step (the interrupted iteration either completed or never ran), written with
    further interrupts held off, so that a second Ctrl-C cannot leave half a checkpoint."""
    step = int(self.global_step.numpy())
    saved = self.manager.latest_checkpoint
    if step == 0 or (saved and saved.endswith(f"-{step}")) or int(self.first_bad_step.numpy()) >= 0:
      return
    held = {}
    if threading.current_thread() is threading.main_thread():
      held = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
      self.save()
      print(f"[train] interrupted at step {step}: checkpoint written, continue with --resume", flush=True)
    finally:
      for signum, handler in held.items():
        signal.signal(signum, handler)

  def _run(self, stream, training_steps, settings, start):
    step = int(self.global_step.numpy())
    if step >= training_steps:
      return
    log_every, checkpoint_every = settings["log_every_steps"], settings["checkpoint_every_steps"]
    budget = settings["time_budget_seconds"]
    window_start, window_step = time.time(), step
    terms = None
    for images in stream:
      terms = self.train_iteration(images)
      step += self.model.steps_per_iteration
      if step // log_every != (step - self.model.steps_per_iteration) // log_every or step >= training_steps:
        self.check_finite()
        now = time.time()
        rate = (step - window_step) / max(now - window_start, 1e-9)
        self.log(terms, rate, (training_steps - step) / max(rate, 1e-9), training_steps)
        window_start, window_step = now, step
      if step // checkpoint_every != (step - self.model.steps_per_iteration) // checkpoint_every:
        self.save()
      if step >= training_steps:
        break
      if budget is not None and time.time() - start >= budget:
        print(f"[train] time budget of {budget}s reached at step {step}; stopping early", flush=True)
        break
    self.save()

  def evaluate(self, stream):
    """Means of the model's evaluation terms over the evaluation batches (dlib's EVAL metrics)."""
    step = tf.cast(self.global_step, tf.float32)

    @tf.function
    def evaluate_batch(images, index):
      return self.model.evaluation_terms(images, self.step_seed(index), step)

    sums, count = {}, 0
    for index, images in enumerate(stream):
      for key, value in evaluate_batch(images, tf.constant(-1 - index, tf.int64)).items():
        sums[key] = sums.get(key, 0.) + float(value)
      count += 1
    return {key: value / max(count, 1) for key, value in sums.items()}


def format_terms(values):
  return " ".join(f"{k}={v:.4g}" for k, v in values.items() if isinstance(v, float))


def main(argv=None):
  parser = cli.ArgumentParser(description="Train a model from gin configs (dlib's train step).")
  parser.add_argument("--model_dir", required=True, help="output directory (dlib's model_dir)")
  cli.add_gin_arguments(parser, "model_dir")
  parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in model_dir")
  args = parser.parse_args(argv)
  cli.main_guard(train_with_gin, args.model_dir, args.overwrite, args.gin_config, cli.gin_bindings(args),
                 resume=args.resume)


if __name__ == "__main__":
  main(sys.argv[1:])
