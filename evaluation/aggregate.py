"""Aggregation: every ``results/aggregate/evaluation.json`` under a directory in one table, and a summary plot.

    python -m evaluation.aggregate DIR [--output PREFIX]

Writes (PREFIX defaults to ``DIR/aggregated_results``):

    PREFIX.json   dlib's aggregated format: one row per evaluation (the flat evaluation.json plus its ``path``),
                  as ``dlib_aggregate_results`` writes it; ``disentanglement_lib.utils.aggregate_results.
                  load_aggregated_json_results(PREFIX.json)`` reads it back into a DataFrame.
    PREFIX.csv    one row per (representation × metric) pair: path, model directory, postprocessing, metric,
                  model, model_num, dataset, seed, the train_config hyper-parameters that differ between rows,
                  and every ``evaluation_results.*`` score (empty where a metric does not report it).
    PREFIX.png    score distributions per model and metric, as the figures of Locatello et al. 2019: one
                  column per headline score, one row per data set, a violin per model with its runs as dots.
    DIR/report.html  the study page (``evaluation.html_pages``): a sortable table of every run's headline scores
                  and the violin plots; each run links to its own ``report.html``.
"""

import glob
import json
import os
import sys

from evaluation import html_pages
from evaluation.metrics import table as metric_table
from submission import cli, layout
from submission.atomic import atomic_path
from submission.errors import UserError

PATTERN = layout.step_aggregate("**", layout.EVALUATION)
# Columns of the CSV that identify a row; the rest are hyper-parameters and scores.
ID_COLUMNS = ("path", "model_dir", "postprocessing", "metric", "model", "model_num", "dataset", "seed")
# train_config keys already shown in an ID column.
SHOWN_TRAIN_KEYS = {"train_config.model.name", "train_config.model.model_num", "train_config.model.random_seed",
                    "train_config.dataset.name"}


def find_results(directory):
  if not os.path.isdir(directory):
    raise UserError(f"{directory} is not a directory")
  paths = sorted(glob.glob(os.path.join(directory, PATTERN), recursive=True))
  if not paths:
    raise UserError(f"no results/aggregate/evaluation.json under {directory}: evaluate something first "
                    f"(python -m evaluation.batch)")
  return paths


def load_results(paths):
  """dlib's ``aggregate_results._load`` for each file: the flat dict plus its ``path``."""
  rows = []
  for path in paths:
    with open(path) as f:
      row = json.load(f)
    row["path"] = path
    rows.append(row)
  return rows


def gin_text_value(value):
  """A recorded gin value without its quotes ('beta_vae' → beta_vae); other values unchanged."""
  if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
    return value[1:-1]
  return value


def identify(row):
  """The ID columns of one evaluation."""
  pair_dir = os.path.dirname(os.path.dirname(os.path.dirname(row["path"])))  # <pair>/results/aggregate/x.json
  metric = os.path.basename(pair_dir)
  metrics_dir = os.path.dirname(os.path.dirname(pair_dir))
  if os.path.basename(metrics_dir) == "metrics":
    model_dir, postprocessing = os.path.dirname(metrics_dir), os.path.basename(os.path.dirname(pair_dir))
  else:
    model_dir, postprocessing = os.path.dirname(pair_dir), ""
  model = row.get("train_config.model.name")
  if model in (None, "''", '""'):  # dlib's own configs leave model.name empty: name the model by its function
    model = str(row.get("train_config.model.model", "?")).lstrip("@").removesuffix("()")
  model = gin_text_value(model)
  model_num = row.get("train_config.model.model_num")
  return {"path": pair_dir, "model_dir": model_dir, "postprocessing": postprocessing, "metric": metric,
          "model": model, "model_num": None if model_num in (None, "None") else model_num,
          "dataset": gin_text_value(row.get("evaluation_config.dataset.name")),
          "seed": row.get("train_config.model.random_seed")}


def table(rows):
  """The CSV table: one dict per pair, with the ID columns, varying hyper-parameters and all scores."""
  train_keys = sorted({k for row in rows for k in row if k.startswith("train_config.")} - SHOWN_TRAIN_KEYS)
  varying = [k for k in train_keys if len({json.dumps(row.get(k)) for row in rows}) > 1]
  score_keys = sorted({k for row in rows for k in row
                       if k.startswith("evaluation_results.") and k != "evaluation_results.uuid"})
  records = []
  for row in rows:
    record = identify(row)
    record.update({k: gin_text_value(row.get(k)) for k in varying})
    record.update({k: row.get(k) for k in score_keys})
    records.append(record)
  return records, list(ID_COLUMNS) + varying + score_keys


def headline_scores(records):
  """[(metric, score column)] to plot: each metric's headline keys, as the pipeline's score table shows them."""
  pairs = []
  for metric in sorted({r["metric"] for r in records}):
    reported = {k for r in records if r["metric"] == metric for k, v in r.items()
                if k.startswith("evaluation_results.") and isinstance(v, (int, float))}
    keys = metric_table.headline_keys(metric, sorted(k.split(".", 1)[1] for k in reported))
    pairs += [(metric, f"evaluation_results.{k}") for k in keys if f"evaluation_results.{k}" in reported]
  return pairs


def plot(records, path):
  """Violin plots of each headline score per model (columns: scores; rows: data sets), as Locatello et al."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  scores = headline_scores(records)
  datasets = sorted({str(r["dataset"]) for r in records})
  models = sorted({str(r["model"]) for r in records})
  if not scores:
    raise UserError("no numeric scores to plot")
  figure, axes = plt.subplots(len(datasets), len(scores), squeeze=False,
                              figsize=(max(4.0, 0.55 * len(models) + 1.5) * len(scores), 3.2 * len(datasets)))
  for i, dataset in enumerate(datasets):
    for j, (metric, column) in enumerate(scores):
      ax = axes[i][j]
      for k, model in enumerate(models):
        values = np.array([r[column] for r in records if str(r["dataset"]) == dataset and str(r["model"]) == model
                           and r["metric"] == metric and isinstance(r.get(column), (int, float))
                           and np.isfinite(r[column])], dtype=float)
        if values.size == 0:
          continue
        if values.size > 1 and np.ptp(values) > 0:  # a kernel density needs spread
          parts = ax.violinplot([values], positions=[k], showextrema=False, widths=0.8)
          for body in parts["bodies"]:
            body.set_alpha(0.35)
        jitter = np.random.RandomState(k).uniform(-0.12, 0.12, values.size)
        ax.scatter(k + jitter, values, s=8, color="black", alpha=0.7, zorder=3)
      ax.set_xticks(range(len(models)))
      ax.set_xticklabels(models, rotation=45, ha="right", fontsize=8)
      ax.set_xlim(-0.6, len(models) - 0.4)
      ax.set_title(f"{metric}: {column.split('.', 1)[1]}" if i == 0 else "", fontsize=9)
      if j == 0:
        ax.set_ylabel(dataset, fontsize=9)
      ax.grid(axis="y", alpha=0.3)
  figure.tight_layout()
  with atomic_path(path) as temporary:
    figure.savefig(temporary, dpi=90, format="png")
  plt.close(figure)


def aggregate(directory, output=None):
  """Writes PREFIX.json (dlib's format), PREFIX.csv and PREFIX.png; returns their paths and the row count."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  prefix = output or layout.aggregated_results(directory)
  rows = load_results(find_results(directory))
  # dlib's aggregate_results_to_json: a DataFrame of the rows, written column-oriented by pandas; with pandas'
  # highest precision (15 decimals) instead of its default 10, which would round every score.
  frame = pd.DataFrame(rows)
  with atomic_path(prefix + ".json") as temporary:
    frame.to_json(path_or_buf=temporary, double_precision=15)
  records, columns = table(rows)
  with atomic_path(prefix + ".csv") as temporary:
    pd.DataFrame(records, columns=columns).to_csv(temporary, index=False)
  plot(records, prefix + ".png")
  page = html_pages.write_study_report(directory, records, headline_scores(records), prefix + ".png")
  print(f"[aggregate] {len(rows)} evaluations ({len({r['path'] for r in records})} pairs) → {prefix}.json, "
        f"{prefix}.csv, {prefix}.png, {page}")
  return {"json": prefix + ".json", "csv": prefix + ".csv", "png": prefix + ".png", "report": page,
          "rows": len(rows)}


def main(argv=None):
  parser = cli.ArgumentParser(description="Gather every results/aggregate/evaluation.json under DIR into one "
                                   "table (dlib's aggregated JSON and a CSV) and plot the score distributions.")
  parser.add_argument("directory")
  parser.add_argument("--output", help="path prefix of the outputs (default: DIR/aggregated_results)")
  args = parser.parse_args(argv)
  cli.main_guard(aggregate, args.directory, args.output)


if __name__ == "__main__":
  main(sys.argv[1:])
