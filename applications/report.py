"""What a researcher looks at: one HTML page per run (``OUT/report.html``) and one per study (``DIR/report.html``).

    python -m applications.report OUT [OUT ...]    # the page of each run laid out as evaluation.pipeline writes it

The run page is self-contained (every picture is embedded as a data URI; nothing is fetched from the network),
so it can be mailed or archived alone. It shows, from the files the run wrote:

* the score table: each metric's headline values with their labels, its config (dlib's
  ``unsupervised_study_v1/metric_configs/<metric>.gin`` or the project's ``evaluation/metrics/configs/``, as
  ``evaluation/metrics/table.py`` says) and the sample sizes it ran with; runs of the ``--quick`` preset are
  marked as such;
* the model, its own and its latent space's hyper-parameters (the full ``train.gin`` folded away), and the
  latent geometry the pictures were drawn on (hypersphere, torus or Euclidean), with pruned dimensions named;
* the data set and its provenance (for dSprites: the project's re-rendering or DeepMind's file, read from the
  file's own metadata);
* training curves of every logged term and the final training results, reconstructions next to their inputs,
  one latent traversal per dimension (and the animated GIF), samples from the prior;
* on dSprites (and its colour, noise and scream variants), whether the representation turns the heart's
  orientation into a loop: ``evaluation.periodicity``'s winding numbers, their summary and their picture;
* the wall time of each stage, and the command that reproduces the run (``OUT/reproduce.sh``, written by
  ``applications.run_local``) with the step-by-step commands that rerun each stage from its recorded gin file.

Missing pictures (``OUT/visualizations``) are drawn first by ``applications.visualize``. ``./run_local.sh`` writes
the page at the end of every run; the points of a sweep get theirs with ``python -m applications.report DIR/*/``
(the study page, ``evaluation.aggregate``'s, links each run's page when it exists). The HTML helpers are
``evaluation.html_pages``'.

Only the picture drawing and the provenance look-up import TensorFlow (lazily).
"""

import os
import shlex
import sys

from evaluation import periodicity
from evaluation.html_pages import escape, figure_html, key_value_table, number_cell, page, table_html
from evaluation.metrics import table
from submission import cli, layout, output_lock
from submission.atomic import atomic_file, read_json
from submission.errors import UserError
from evaluation.job_estimate import QUICK_PRESET
from submission.layout import RunLayout

# Training settings shown beside the model's own hyper-parameters (train_config keys, scopes ignored).
TRAINING_KEYS = ("model.training_steps", "model.batch_size", "model.random_seed", "encoder.num_latent",
                 "encoder.encoder_fn", "decoder.decoder_fn", "reconstruction_loss.loss_fn",
                 "AdamOptimizer.learning_rate")


# --- reading a run -----------------------------------------------------------------------------------------------
def read_text(path, default=None):
  if not os.path.isfile(path):
    return default
  with open(path) as f:
    return f.read()


def read_results_json(step_dir, name):
  """The contents of ``layout.results_json(step_dir, name)``, {} when the file is missing."""
  return read_json(layout.results_json(step_dir, name), {})


def metric_runs(output_dir):
  """[(metric, evaluation_results, evaluation_config)] of every evaluated metric, in name order."""
  metrics_dir = RunLayout(output_dir).metrics
  names = sorted(os.listdir(metrics_dir)) if os.path.isdir(metrics_dir) else []
  runs = []
  for metric in names:
    metric_dir = os.path.join(metrics_dir, metric)
    results = read_results_json(metric_dir, "evaluation_results.json")
    if results:
      runs.append((metric, results, read_results_json(metric_dir, "evaluation_config.json")))
  return runs


def sample_sizes(evaluation_config):
  """The metric's sample-size bindings (``*.num_train``, ``*.num_test``, ...), which decide whether its scores are
  comparable to dlib's."""
  return {key: value for key, value in sorted(evaluation_config.items())
          if ".num_" in key or key.endswith(".batch_size")}


def unscoped(key):
  """'vae/AdamOptimizer.learning_rate' → 'AdamOptimizer.learning_rate'."""
  return key.rsplit("/", 1)[-1]


def configurable_name(value):
  """'@deltavae()' or '@hypersphere' → 'deltavae' / 'hypersphere'; None for a value that is no reference."""
  if not isinstance(value, str) or not value.startswith("@"):
    return None
  return value[1:].removesuffix("()").rsplit("/", 1)[-1]


def key_hyper_parameters(train_config):
  """{key: value}: the model's own bindings, those of the configurables they refer to (its latent space, its
  discriminator, ...), and the training settings of TRAINING_KEYS."""
  model = configurable_name(train_config.get("model.model"))
  wanted = {model} if model else set()
  for key, value in train_config.items():
    if unscoped(key).split(".", 1)[0] in wanted and configurable_name(value):
      wanted.add(configurable_name(value))
  return {key: value for key, value in sorted(train_config.items())
          if unscoped(key).split(".", 1)[0] in wanted or unscoped(key) in TRAINING_KEYS}


def model_name(train_config):
  name = str(train_config.get("model.name", "")).strip("'\"")
  return name or configurable_name(train_config.get("model.model")) or "?"


def dataset_provenance(name):
  """One sentence on where the data set's observations came from, as found under $DISENTANGLEMENT_LIB_DATA now
  (``registry.provenance``), and which code loads them."""
  from submission.data import named_data  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  try:
    loader = named_data.entry(name).loader
  except UserError:
    return f"{name}: not a data set this project knows"
  return named_data.provenance(name)[1] + (f" Loader: {loader}." if loader else "")


def reproduce_commands(output_dir, metrics):
  """The stage-by-stage commands that rerun each stage from its recorded gin file (into a new directory NEW)."""
  run = RunLayout(output_dir)
  model_gin = layout.step_gin(run.model, layout.TRAIN)
  representation_gin = layout.step_gin(run.representation, layout.POSTPROCESS)
  lines = [f"python -m submission.train --model_dir NEW/model --gin_config {shlex.quote(model_gin)}",
           f"python -m submission.postprocess --model_dir NEW/model --output_dir NEW/postprocessed/mean "
           f"--gin_config {shlex.quote(representation_gin)}"]
  for metric in metrics:
    metric_gin = layout.step_gin(run.metric(metric), layout.EVALUATION)
    lines.append(f"python -m evaluation.evaluate --representation_dir NEW/postprocessed/mean "
                 f"--output_dir NEW/metrics/mean/{metric} --gin_config {shlex.quote(metric_gin)}")
  return lines


def quick_banner(preset):
  if preset != QUICK_PRESET:
    return ""
  return ('<div class="banner"><b>quick preset</b>: a short first look (few training steps, small metric samples). '
          "These scores are not comparable to dlib-size scores.</div>")


# --- the run page ------------------------------------------------------------------------------------------------
def score_rows(metrics):
  rows = []
  for metric, results, config in metrics:
    sizes = "<br>".join(escape(f"{unscoped(k)} = {v}") for k, v in sample_sizes(config).items())
    source = table.config_label(metric) if metric in table.BY_NAME and table.BY_NAME[metric].config else metric
    for key, value in table.headline(metric, results).items():
      rows.append([f"<td>{escape(metric)}</td>", f"<td>{escape(key)} ({escape(table.label(metric, key))})</td>",
                   number_cell(value), f"<td><code>{escape(source)}</code></td>",
                   f"<td>{sizes}</td>"])
  return rows


def wall_time_rows(output_dir, metrics):
  run = RunLayout(output_dir)
  stages = [("train", read_results_json(run.model, "train_results.json")),
            ("postprocess (mean)", read_results_json(run.representation, "postprocess_results.json"))]
  stages += [(f"evaluate {metric}", results) for metric, results, _ in metrics]
  times = [(stage, results["elapsed_time"]) for stage, results in stages if "elapsed_time" in results]
  rows = [[f"<td>{escape(stage)}</td>", f'<td class="number">{cli.format_duration(seconds)}</td>']
          for stage, seconds in times]
  return rows + [["<td><b>total</b></td>",
                  f'<td class="number"><b>{cli.format_duration(sum(s for _, s in times))}</b></td>']]


def traversal_figures(pictures_dir, record):
  """One figure per traversed dimension, each labelled (pruned dimensions and manifold traversals named)."""
  pruned = set(record.get("pruned_dimensions", []))
  manifold = record.get("geometry") in ("sphere", "torus")
  unit = "circle" if record.get("geometry") == "torus" else "dimension"
  figures = []
  for j in range(record.get("num_traversal_dimensions", 0)):
    path = os.path.join(pictures_dir, "traversals", f"dim_{j:02d}.png")
    if not os.path.isfile(path):
      continue
    label = f"{unit} {j}"
    if j in pruned:
      label += ' <span class="label pruned">pruned: its L0 gate is closed</span>'
    elif manifold:
      label += f' <span class="label">on the {escape(record["geometry"])}</span>'
    figures.append(figure_html(path, label, f"traversal of {unit} {j}"))
  return "".join(figures)


def training_pairs_html(pictures_dir, record):
  """The pairs a weakly-supervised model trained on, with the factors each changes; nothing for other models."""
  path = os.path.join(pictures_dir, "pairs.png")
  if not os.path.isfile(path):
    return ""
  changed = "; ".join(f"{i + 1}: {', '.join(names) or 'none'}"
                      for i, names in enumerate(record.get("pair_changed_factors", [])))
  return ("<h2>Training pairs</h2>"
          + figure_html(path, f"pairs drawn as training drew them, first above second; factors changed: "
                              f"{escape(changed)}",
                        "pairs.png"))


def pictures_html(pictures_dir, record):
  """The picture sections: curves, reconstructions, traversals (and GIF), prior samples; ``record`` is the
  pictures' ``pictures.json``."""

  def picture(name, caption):
    path = os.path.join(pictures_dir, name)
    return figure_html(path, caption, name) if os.path.isfile(path) else f"<p>({escape(name)} was not drawn)</p>"

  geometry = escape(record.get("geometry_description", "unknown latent geometry"))
  pruned = record.get("pruned_dimensions", [])
  pruned_note = (f"<p><b>Pruned dimensions</b> (closed L0 gates, constant in every code): "
                 f"{', '.join(map(str, pruned))}</p>" if pruned else "")
  return (
      "<h2>Training curves</h2>" + picture("training_curves.png", "every scalar the training loop logged, by step")
      + training_pairs_html(pictures_dir, record)
      + "<h2>Reconstructions</h2>"
      + picture("reconstructions.png", "top row: inputs; bottom row: each one's reconstruction (z ~ q(z|x))")
      + f"<h2>Latent traversals</h2><p>Latent geometry: <span class=\"label\">{geometry}</span></p>{pruned_note}"
      + picture("traversals.gif", "animation: one row per image, one column per latent dimension")
      + picture("traversals.png", "the first image: one row per dimension, one column per value")
      + traversal_figures(pictures_dir, record)
      + "<h2>Samples from the prior</h2>" + picture("samples.png", "decodings of draws from the model's prior"))


def periodic_loops_html(pictures_dir):
  """The loop measure of the heart's orientation sweeps (``visualize`` measures it on dSprites only; elsewhere the
  section is left out): its summary, the picture, and each sweep's numbers folded away."""
  loops = read_json(os.path.join(pictures_dir, layout.LOOPS_RECORD), None)
  if not loops:
    return ""
  summary, picture = loops["summary"], os.path.join(pictures_dir, layout.LOOPS_PICTURE)
  rows = [[f"<td>{escape(', '.join(f'{k} {v}' for k, v in sweep['fixed'].items()))}</td>",
           number_cell(sweep["winding"]), number_cell(sweep["clearance"]), number_cell(sweep["length_ratio"]),
           number_cell(sweep["largest_step_ratio"]), number_cell(sweep["explained_variance"]),
           f"<td>{'yes' if sweep['is_loop'] else 'no'}</td>"]
          for sweep in loops["sweeps"]]
  return (
      "<h2>Periodic factor: the heart's orientation</h2>"
      f"<p>The heart (the one dSprites shape whose orientation is 2π-periodic) turned once round, with the other "
      f"factors fixed at {summary['num_sweeps']} combinations of values: each sweep's mean codes, on their first "
      f"two principal components, go once round their centroid (|winding number| = 1) for a loop, 0 times for a "
      f"path that folds back. A sweep counts as a loop when |w| = 1, its curve keeps at least "
      f"{periodicity.MIN_CLEARANCE:g} of its RMS radius away from the centroid (the clearance) and is at most "
      f"{periodicity.MAX_LENGTH_RATIO:g} times as long as a circle of that radius (the length ratio: a scribble "
      f"winds too); a large largest step means a curve cut and closed by one jump. The images of a turning heart "
      f"are a loop themselves (the raw pixels make loops): a loop says the representation kept that circle, not "
      f"alone that it disentangled the orientation. <code>evaluation.periodicity</code> defines every number.</p>"
      f"<p><b>{escape(periodicity.describe(summary))}.</b></p>"
      + key_value_table(summary)
      + (figure_html(picture, "each sweep on its own first two principal components (unit RMS radius), coloured by "
                     "orientation; bold: the middle sweep; red cross: the centroid", "orientation loops")
         if os.path.isfile(picture) else f"<p>({escape(layout.LOOPS_PICTURE)} was not drawn)</p>")
      + "<details><summary>every sweep</summary>"
      + table_html(["fixed factor indices", "winding", "clearance", "length ratio", "largest step ratio",
                    "explained variance", "loop"], rows, sortable=True) + "</details>")


def training_provenance_html(run):
  """What ``provenance.json`` recorded when the model trained: the data set then (the file may have changed since)
  and the commits of the code that trained it."""
  recorded = read_json(run.provenance, None)
  if not recorded:
    return ""
  commits = ", ".join(f"<code>{escape(commit[:12])}</code>" for commit in recorded.get("commits", [])) or "unknown"
  dirty = " (with uncommitted changes)" if recorded.get("dirty") else ""
  return (f"<p>When it trained: {escape(recorded.get('dataset_provenance', 'not recorded'))} Code: commit "
          f"{commits}{dirty}.</p>")


def run_report_html(output_dir, provenance):
  """The run page's HTML (see the module docstring); ``provenance`` is the data set's sentence."""
  run = RunLayout(output_dir)
  train_config = read_results_json(run.model, "train_config.json")
  train_results = read_results_json(run.model, "train_results.json")
  scores = read_json(run.scores_json, {})
  metrics = metric_runs(output_dir)
  name, dataset = model_name(train_config), str(train_config.get("dataset.name", "?")).strip("'\"")
  record = read_json(run.pictures_record, {})
  command = read_text(run.command)
  gin_text = read_text(layout.step_gin(run.model, layout.TRAIN), "(no train.gin)")
  steps = train_results.get("global_step", "?")
  body = (
      f"<h1>{escape(name)} on {escape(dataset)}</h1><p>{escape(os.path.abspath(output_dir))} · {steps} training "
      f"steps</p>" + quick_banner(scores.get("preset"))
      + "<h2>Scores</h2>" + (table_html(["metric", "score", "value", "config", "sample sizes"],
                                          score_rows(metrics), sortable=True)
                             if metrics else "<p>no metric evaluated</p>")
      + f"<h2>Model</h2><p><b>{escape(name)}</b> (<code>{escape(train_config.get('model.model', '?'))}</code>), "
      f"latent geometry: <span class=\"label\">{escape(record.get('geometry_description', 'unknown'))}</span></p>"
      + key_value_table(key_hyper_parameters(train_config))
      + f"<details><summary>full train.gin</summary><pre>{escape(gin_text)}</pre></details>"
      + f"<h2>Data set</h2><p><b>{escape(dataset)}</b>: {escape(provenance)}</p>" + training_provenance_html(run)
      + "<h2>Training results</h2><p>means over the evaluation batches after training</p>"
      + key_value_table({k: v for k, v in train_results.items() if k != "uuid"})
      + pictures_html(run.pictures, record) + periodic_loops_html(run.pictures)
      + "<h2>Wall time per stage</h2>" + table_html(["stage", "wall time"], wall_time_rows(output_dir, metrics))
      + "<h2>Reproduce</h2>"
      + (f"<p>The command that made this run:</p><pre>{escape(command.strip())}</pre>" if command else "")
      + "<p>Each stage from its recorded gin file (NEW: a new output directory):</p><pre>"
      + escape("\n".join(reproduce_commands(output_dir, [m for m, _, _ in metrics]))) + "</pre>")
  return page(f"{name} on {dataset}", body)


def write_run_report(output_dir, command=None):
  """Writes ``OUT/report.html`` (and ``OUT/reproduce.sh`` when ``command`` is given); draws the pictures first
  when they are missing. Returns the report's path. The run's output lock is taken (or already held, by
  ``applications.run_local``): the pictures and the page must not be drawn while another process rewrites the run."""
  with output_lock.claim(output_dir):
    return _write_run_report(output_dir, command)


def _write_run_report(output_dir, command):
  run = RunLayout(output_dir)
  if not os.path.isdir(os.path.join(run.model, layout.RESULTS_DIR)):
    raise UserError(f"{output_dir} holds no trained model (model/results): not a run of evaluation.pipeline")
  if command:
    with atomic_file(run.command) as f:
      f.write(f"#!/bin/sh\n# Reproduces this run, from the repository root (written by applications.run_local).\n"
              f"{command}\n")
      os.chmod(f.name, 0o755)
  if not os.path.isdir(run.pictures):
    from applications import visualize  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
    visualize.visualize(run.model, run.pictures)
  dataset = str(read_results_json(run.model, "train_config.json").get("dataset.name", "?"))
  text = run_report_html(output_dir, dataset_provenance(dataset.strip("'\"")))
  with atomic_file(run.report) as f:
    f.write(text)
  return run.report


def main(argv=None):
  parser = cli.ArgumentParser(description="Write OUT/report.html for each run: one self-contained page with a "
                              "run's scores, model, data, curves, reconstructions, traversals and samples.")
  parser.add_argument("output_dirs", nargs="+", metavar="OUT",
                      help="a run's output directory (as ./run_local.sh or a sweep point writes it)")
  args = parser.parse_args(argv)
  for output_dir in args.output_dirs:
    print(f"[report] {cli.main_guard(write_run_report, output_dir)}", flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])
