"""A study's small results, gathered into the repository: per-run scores, train results and curves, one table, plots.

    python -m evaluation.collect_study SWEEP_OUTPUT RESULTS_DIR [--ervae_json FILE]

``SWEEP_OUTPUT`` is an ``evaluation.sweep`` output directory (``<model_num>/`` per point). For every point that has
finished training, ``RESULTS_DIR/<model_num>_<label>/`` gets (small files only: no checkpoints, no SavedModels)

    run.json             label, model, data set and its provenance, the commits that trained it, steps, wall times
    scores.json          the headline score of every metric evaluated so far
    metrics.json         every metric's full results (dlib's evaluation_results)
    train_results.json   dlib's train results;  train.gin: the operative training config
    curves.csv           every TensorBoard scalar of training: step, tag, value

and ``RESULTS_DIR`` itself gets ``table.csv`` and ``table.md`` (one row per run; a column per headline number of
every metric scored, as ``evaluation/metrics/table.py`` labels them) and the plots ``scores.png`` (those
scores per model), ``kl_reconstruction.png`` (KL and reconstruction over training per model),
``pvae_pruning.png`` (PVAE's active dimensions and expected L0 over training, its KL next to DIP-VAE-I's) and
``deltavae_capacity.png`` (ΔVAE's KL against its capacity target); a configuration trained with several seeds
(the same label: gin file and swept values) also gets its median and range over the complete ones in ``seeds.md``,
``seeds.csv`` and ``seeds.png``. Runs still training are listed as such and
keep nothing but their curves so far. Runs collected earlier whose points are not in ``SWEEP_OUTPUT`` (it may be
another machine's, or a later session's with only the remaining points) stay, read back from their files in
``RESULTS_DIR``. ``--ervae_json``: the ER-VAE circle benchmark's ``--json`` output, copied
to ``RESULTS_DIR/ervae_circle.json`` and shown in the table's second part. Re-running replaces everything it wrote.
"""

import csv
import glob
import os
import shutil
import sys

from evaluation.metrics import table
from submission import cli, layout
from submission.atomic import atomic_path, read_json, write_json_atomically
from submission.errors import UserError
from submission.layout import RunLayout

# Hyper-parameters that name a run (the swept values of the study files).
LABEL_KEYS = ("vae.beta", "factor_vae.gamma", "beta_tc_vae.beta", "dip_vae.lambda_od", "annealed_vae.c_max",
              "chyvae.nu", "deltavae.beta", "group_vae.beta", "mlvae.beta", "dynamics.k", "pvae.lambda_d",
              "encoder.num_latent", "l0_gated_gaussian.l0_weight")
# The table's column for how closely a capacity-annealed KL followed its target (capacity_tracking).
CAPACITY_GAP = "max abs(KL - C), last 80 % of ramp"


def headlines(runs):
  """(metric, key, label) of every headline number (evaluation/metrics/table.py) some run has, in the table's
  order."""
  reported = {(metric, key) for run in runs for metric, values in run["metrics"].items() for key in values}
  return [(metric.name, key, label) for metric in table.METRICS for key, label in metric.headline
          if (metric.name, key) in reported]


def binding_values(point):
  """{binding name: value as written} of a sweep point's bindings."""
  values = {}
  for binding in point["bindings"]:
    key, _, value = (part.strip() for part in binding.partition("="))
    values[key] = value.strip("'\"")
  return values


def label_of(point):
  """(label, data set) of a sweep point: the gin file's name and the swept values, the seed left out so that the
  seeds of one configuration share a label."""
  name = os.path.splitext(os.path.basename(point["gin_file"]))[0]
  values = binding_values(point)
  swept = [f"{key.split('.')[-1]}={values[key]}" for key in LABEL_KEYS if key in values]
  return " ".join([name] + swept), values.get("dataset.name", "")


def collect_run(point_dir, results_dir):
  """Copies one point's small results; returns its row for the table (None if it has not started)."""
  layout_of_run = RunLayout(point_dir)
  point = read_json(layout_of_run.sweep_point)
  if point is None:
    return None
  from submission.training_curves import read_scalars  # pylint: disable=import-outside-toplevel  (TensorFlow)
  label, dataset = label_of(point)
  seed = binding_values(point).get("model.random_seed")
  target = os.path.join(results_dir, f"{point['model_num']}_{label.replace(' ', '_').replace('=', '')}")
  shutil.rmtree(target, ignore_errors=True)
  os.makedirs(target)
  model_dir = layout_of_run.model
  curves = read_scalars(layout.checkpoint_dir(model_dir))
  with atomic_path(os.path.join(target, "curves.csv")) as temporary, open(temporary, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["step", "tag", "value"])
    for tag, (steps, values) in sorted(curves.items()):
      writer.writerows((step, tag, value) for step, value in zip(steps, values))
  train_results = read_json(layout.step_results(model_dir, layout.TRAIN))
  metrics = {}
  for metric in point["metrics"]:
    results = read_json(layout.step_results(layout_of_run.metric(metric), layout.EVALUATION))
    if results is not None:
      metrics[metric] = results
  provenance = read_json(layout_of_run.provenance, {})
  train_gin = layout.step_gin(model_dir, layout.TRAIN)
  if train_results is not None:
    write_json_atomically(os.path.join(target, "train_results.json"), train_results)
    shutil.copyfile(train_gin, os.path.join(target, "train.gin"))
  write_json_atomically(os.path.join(target, "metrics.json"), metrics)
  write_json_atomically(os.path.join(target, "scores.json"),
                        {metric: table.headline(metric, values) for metric, values in metrics.items()})
  steps = train_results.get("global_step") if train_results else max((max(s) for s, _ in curves.values()), default=0)
  run = {"label": label, "model_num": point["model_num"], "gin_file": point["gin_file"], "bindings": point["bindings"],
         "dataset": dataset, "seed": int(seed) if seed is not None else None,
         "dataset_provenance": provenance.get("dataset_provenance"),
         "commits": provenance.get("commits", []), "dirty": provenance.get("dirty"),
         "status": "complete" if train_results and len(metrics) == len(point["metrics"]) else
                   ("evaluating" if train_results else "training"),
         "steps": steps, "train_seconds": train_results.get("elapsed_time") if train_results else None,
         "metric_seconds": {metric: values.get("elapsed_time") for metric, values in metrics.items()}}
  write_json_atomically(os.path.join(target, "run.json"), run)
  return dict(run, metrics=metrics, train_results=train_results or {}, curves=curves)


def read_collected_run(run_json):
  """A run collected earlier, from its files in RESULTS_DIR (its sweep output may be gone: another machine, another
  session), in the form ``collect_run`` returns."""
  directory = os.path.dirname(run_json)
  curves = {}
  with open(os.path.join(directory, "curves.csv"), newline="") as f:
    for row in csv.DictReader(f):
      steps, values = curves.setdefault(row["tag"], ([], []))
      steps.append(int(row["step"]))
      values.append(float(row["value"]))
  return dict(read_json(run_json), metrics=read_json(os.path.join(directory, "metrics.json"), {}),
              train_results=read_json(os.path.join(directory, "train_results.json"), {}), curves=curves)


def capacity_tracking(curves, skip=0.2):
  """How closely the logged batch-mean KL followed the capacity target C over the ramp, the first ``skip`` of it
  left out: {"ramp": [first step, last step], "max_gap", "mean_gap"} in nats, or None for a run without a rising C.

  The ramp runs from the first logged step to the first at which C reaches its final value; the gap is |KL − C| at
  the logged steps inside its last (1 − skip) (the KL is the mean over each logging window, C its value at the
  window's last step)."""
  if "capacity" not in curves or "kl_loss" not in curves:
    return None
  steps, capacity = curves["capacity"]
  if len(steps) < 2 or capacity[-1] <= capacity[0]:
    return None
  end = steps[next(i for i, value in enumerate(capacity) if value >= capacity[-1])]
  start = steps[0] + skip * (end - steps[0])
  target = dict(zip(steps, capacity))
  gaps = [abs(kl - target[step]) for step, kl in zip(*curves["kl_loss"]) if start <= step <= end and step in target]
  if not gaps:
    return None
  return {"ramp": [steps[0], end], "max_gap": max(gaps), "mean_gap": sum(gaps) / len(gaps)}


def table_rows(runs):
  rows = []
  columns = headlines(runs)
  for run in runs:
    train = run["train_results"]
    tracking = capacity_tracking(run["curves"])
    row = {"run": run["model_num"], "model": run["label"], "dataset": run["dataset"], "seed": run.get("seed"),
           "status": run["status"],
           "steps": run["steps"], "reconstruction": train.get("reconstruction_loss"), "KL": train.get("kl_loss"),
           "active dims": train.get("num_active_dims"),
           CAPACITY_GAP: tracking["max_gap"] if tracking else None}
    for metric, key, column in columns:
      row[column] = run["metrics"].get(metric, {}).get(key)
    seconds = (run["train_seconds"] or 0) + sum(s or 0 for s in run["metric_seconds"].values())
    row["wall time"] = cli.format_duration(seconds) if seconds else ""
    rows.append(row)
  return rows


def format_cell(value):
  if value is None:
    return ""
  if isinstance(value, float):
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
  return str(value)


def write_table(rows, results_dir, ervae=None):
  # Columns no run fills (a seed where the study has none, PVAE's active dimensions in a study without PVAE) are
  # left out.
  columns = [c for c in (rows[0] if rows else []) if any(row[c] not in (None, "") for row in rows)]
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(format_cell(row[c]) for c in columns) + " |" for row in rows]
  if ervae:
    lines += ["", "ER-VAE circle benchmark (nats per test point, higher is better):", "",
              "| model | ELBO | IWAE |", "|---|---|---|"]
    lines += [f"| {name} | {format_cell(values.get('elbo'))} | {format_cell(values.get('iwae'))} |"
              for name, values in ervae.get("models", {}).items()]
  write_csv_and_markdown(results_dir, "table", columns, rows, lines)


def write_csv_and_markdown(results_dir, stem, columns, rows, markdown_lines):
  """``<stem>.csv`` (``rows`` under ``columns``; other keys left out) and ``<stem>.md``, each written atomically."""
  with atomic_path(os.path.join(results_dir, f"{stem}.csv")) as temporary, open(temporary, "w", newline="") as f:
    writer = csv.DictWriter(f, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  with atomic_path(os.path.join(results_dir, f"{stem}.md")) as temporary, open(temporary, "w") as f:
    f.write("\n".join(markdown_lines) + "\n")


def seed_groups(items, key):
  """{key(item): [items]} of the complete items (table rows or runs) whose configuration ran at least twice."""
  groups = {}
  for item in items:
    if item["status"] == "complete":
      groups.setdefault(key(item), []).append(item)
  return {name: members for name, members in groups.items() if len(members) >= 2}


def seed_summary(rows):
  """Median and range over seeds of every configuration (model label and data set) with two or more complete runs:
  one row per configuration, ``n`` (runs) and, per number column, ``<column> median`` and ``<column> range`` (as
  "min–max"). Configurations run once are left out: a median of one is no summary."""
  from statistics import median  # pylint: disable=import-outside-toplevel
  first = next(iter(rows), {})
  skip = {"run", "model", "dataset", "seed", "status", "steps", "active dims", CAPACITY_GAP, "wall time"}
  columns = [c for c in first if c not in skip]
  summary = []
  for (model, dataset), members in seed_groups(rows, lambda row: (row["model"], row["dataset"])).items():
    entry = {"model": model, "dataset": dataset, "n": len(members),
             "seeds": " ".join(str(m["seed"]) for m in sorted(members, key=lambda m: m["seed"] or 0))}
    for column in columns:
      values = [m[column] for m in members if isinstance(m.get(column), (int, float))]
      if values:
        entry[f"{column} median"] = median(values)
        entry[f"{column} range"] = f"{format_cell(min(values))}–{format_cell(max(values))}"
    summary.append(entry)
  return summary


def write_seed_summary(summary, results_dir):
  """``seeds.csv`` and ``seeds.md`` (median [range] per configuration); nothing when no configuration has seeds."""
  if not summary:
    return
  columns = list(dict.fromkeys(key for entry in summary for key in entry))
  numbers = [c.removesuffix(" median") for c in columns if c.endswith(" median")]
  lines = ["Median [range] over seeds of each configuration with two or more complete runs.", "",
           "| model | dataset | n | " + " | ".join(numbers) + " |", "|" + "---|" * (3 + len(numbers))]
  for entry in summary:
    cells = [f"{format_cell(entry[f'{c} median'])} [{entry[f'{c} range']}]" if f"{c} median" in entry else ""
             for c in numbers]
    lines.append(f"| {entry['model']} | {entry['dataset']} | {entry['n']} | " + " | ".join(cells) + " |")
  write_csv_and_markdown(results_dir, "seeds", columns, summary, lines)


def plot_all(runs, results_dir):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  def save(figure, name):
    figure.tight_layout()
    with atomic_path(os.path.join(results_dir, name)) as temporary:
      figure.savefig(temporary, dpi=90, format="png")
    plt.close(figure)

  scored = [run for run in runs if run["metrics"]]
  if scored:
    columns = headlines(scored)
    figure, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.8), sharey=False, squeeze=False)
    axes = axes[0]
    for axis, (metric, key, column) in zip(axes, columns):
      values = [run["metrics"].get(metric, {}).get(key, np.nan) for run in scored]
      axis.barh(range(len(scored)), values, color="tab:blue")
      axis.set_yticks(range(len(scored)), [f"{r['label']} ({r['dataset'][:8]})" for r in scored] if axis is axes[0]
                      else [""] * len(scored))
      axis.set_title(column)
      axis.invert_yaxis()
    save(figure, "scores.png")

  seeded = seed_groups(scored, lambda run: f"{run['label']} ({run['dataset'][:8]})")
  if seeded:
    columns = headlines([run for members in seeded.values() for run in members])
    figure, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 0.5 * len(seeded) + 1.6),
                                squeeze=False)
    for axis, (metric, key, column) in zip(axes[0], columns):
      for position, members in enumerate(seeded.values()):
        values = [run["metrics"].get(metric, {}).get(key, np.nan) for run in members]
        axis.plot(values, [position] * len(values), "o", color="tab:blue", alpha=0.6)
        axis.plot([np.nanmedian(values)] * 2, [position - 0.3, position + 0.3], color="black")
      axis.set_yticks(range(len(seeded)), list(seeded) if axis is axes[0][0] else [""] * len(seeded))
      axis.set_ylim(len(seeded) - 0.5, -0.5)
      axis.set_title(f"{column}: seeds, median")
    save(figure, "seeds.png")

  figure, axes = plt.subplots(1, 2, figsize=(13, 4.2))
  for run in runs:
    for axis, tag in zip(axes, ("kl_loss", "reconstruction_loss")):
      if tag in run["curves"]:
        axis.plot(*run["curves"][tag], label=f"{run['label']} ({run['dataset'][:8]})")
  for axis, title in zip(axes, ("KL (nats)", "reconstruction (nats)")):
    axis.set_title(title)
    axis.set_xlabel("step")
  axes[1].set_yscale("log")
  axes[0].legend(fontsize=7)
  save(figure, "kl_reconstruction.png")

  pvae = [run for run in runs if run["label"].startswith("pvae")]
  dip = [run for run in runs if run["label"].startswith("dip_vae_i ")]
  if pvae:
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for run in pvae:
      for axis, tag in zip(axes[:2], ("num_active_dims", "expected_l0")):
        if tag in run["curves"]:
          axis.plot(*run["curves"][tag], label=run["label"])
    for run in pvae + dip:
      if "kl_loss" in run["curves"]:
        axes[2].plot(*run["curves"]["kl_loss"], label=run["label"])
    axes[0].axhline(5, color="grey", linestyle=":", label="the data's 5 factors")
    for axis, title in zip(axes, ("PVAE: active dimensions", "PVAE: expected L0", "KL: PVAE vs DIP-VAE-I")):
      axis.set_title(title)
      axis.set_xlabel("step")
      axis.legend(fontsize=7)
    save(figure, "pvae_pruning.png")

  delta = [run for run in runs if run["label"].startswith("deltavae")]
  if delta:
    figure, axis = plt.subplots(figsize=(7, 4))
    for run in delta:
      for tag, style in (("kl_loss", "-"), ("capacity", "--")):
        if tag in run["curves"]:
          axis.plot(*run["curves"][tag], style, label=f"{run['label']}: {tag}")
    axis.set_title("ΔVAE: KL against its capacity target")
    axis.set_xlabel("step")
    axis.set_ylabel("nats")
    axis.legend(fontsize=8)
    save(figure, "deltavae_capacity.png")


def collect(sweep_output, results_dir, ervae_json=None):
  if not os.path.isdir(sweep_output):
    raise UserError(f"{sweep_output} is not a directory (an evaluation.sweep output)")
  ervae = None
  if ervae_json:
    ervae = read_json(ervae_json)
    if ervae is None:
      raise UserError(f"--ervae_json {ervae_json} does not exist")
  os.makedirs(results_dir, exist_ok=True)
  point_dirs = sorted((d for d in glob.glob(os.path.join(sweep_output, "*")) if os.path.basename(d).isdigit()),
                      key=lambda d: int(os.path.basename(d)))
  runs = [run for run in (collect_run(d, results_dir) for d in point_dirs) if run is not None]
  collected = {run["model_num"] for run in runs}
  kept = [run for run in map(read_collected_run, glob.glob(os.path.join(results_dir, "*", "run.json")))
          if run["model_num"] not in collected]
  runs = sorted(runs + kept, key=lambda run: run["model_num"])
  if ervae is not None and os.path.abspath(ervae_json) != os.path.abspath(os.path.join(results_dir,
                                                                                       "ervae_circle.json")):
    write_json_atomically(os.path.join(results_dir, "ervae_circle.json"), ervae)
  rows = table_rows(runs)
  write_table(rows, results_dir, ervae)
  write_seed_summary(seed_summary(rows), results_dir)
  plot_all(runs, results_dir)
  print(f"[collect_study] {len(runs)} runs ({sum(r['status'] == 'complete' for r in runs)} complete) -> "
        f"{results_dir} (table.md, table.csv, plots)")
  return runs


def main(argv=None):
  parser = cli.ArgumentParser(description="Gather a sweep's small results (scores, train results, curves) into a "
                              "results directory, with a table and plots.")
  parser.add_argument("sweep_output", help="an evaluation.sweep output directory")
  parser.add_argument("results_dir", help="where to write, e.g. results/reproduce_cpu")
  parser.add_argument("--ervae_json", help="the ER-VAE circle benchmark's --json output")
  args = parser.parse_args(argv)
  cli.main_guard(collect, args.sweep_output, args.results_dir, args.ervae_json)


if __name__ == "__main__":
  main(sys.argv[1:])
