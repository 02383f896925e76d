"""The challenge's local evaluation of a submission's output: FactorVAE, DCI, SAP, MIG and IRS scores.

    python -m evaluation.local_evaluation [--representation DIR] [--dataset NAME] [--output FILE]
                                          [--metric_bindings B ...]

As the NeurIPS 2019 Disentanglement Challenge starter kit's ``local_evaluation.py`` does:

* the representation is ``$AICROWD_OUTPUT_PATH/$AICROWD_EVALUATION_NAME/representation`` (defaults
  ``./scratch/shared`` and ``experiment_name``, the kit's), i.e. what ``run.sh`` writes;
* each metric is dlib's ``evaluate_with_gin`` (here ``evaluation.evaluate``, its TF2 port) on that directory with
  dlib's own config file, unchanged: ``config/unsupervised_study_v1/metric_configs/{dci, factor_vae_metric,
  sap_score, mig}.gin`` and IRS's ``config/sample/irs/irs.gin`` (the kit shipped a copy of it as
  ``extra_metrics_configs/irs.gin``), with the kit's bindings ``evaluation.random_seed = 0`` and
  ``evaluation.name = '<metric>'``, written (replacing earlier results) to ``<experiment>/metrics/<metric>``;
* the data set is the one recorded with the representation (``dataset.name = "auto"`` in the configs), unless
  ``--dataset`` names another;
* the scores are the kit's headline numbers (as each metric's ``results/aggregate/evaluation.json`` records them
  with the prefix ``evaluation_results.``): factor_vae_metric = ``eval_accuracy``, dci = ``disentanglement``, mig = ``discrete_mig``, sap_score =
  ``SAP_score``, irs = ``IRS``. They are printed and written as JSON to ``--output`` (default
  ``<experiment>/local_evaluation.json``).

``--metric_bindings`` adds gin bindings to every metric (e.g. smaller sample sizes for a quick check:
``dci.num_train=1000``); results computed that way are not comparable with the challenge's.
"""

import json
import os
import sys
import time

from evaluation import evaluate
from evaluation.metrics import table
from submission import cli
from submission.atomic import write_json_atomically
from submission.errors import UserError

# The kit's metrics, in the order of its ``expected_evaluation_metrics``; each one's config and score (its main
# headline key) are the metric table's.
CHALLENGE_METRICS = ("dci", "factor_vae_metric", "sap_score", "mig", "irs")
DEFAULT_OUTPUT_PATH = "./scratch/shared"     # the starter kit's defaults
DEFAULT_EVALUATION_NAME = "experiment_name"


def default_representation_dir(environ=None):
  environ = os.environ if environ is None else environ
  return os.path.join(environ.get("AICROWD_OUTPUT_PATH", DEFAULT_OUTPUT_PATH),
                      environ.get("AICROWD_EVALUATION_NAME", DEFAULT_EVALUATION_NAME), "representation")


def local_evaluation(representation_dir=None, dataset=None, output_file=None, metric_bindings=(),
                     metrics=tuple(CHALLENGE_METRICS)):
  """Evaluates the challenge's metrics on ``representation_dir``; returns {metric: score} (also written)."""
  representation_dir = os.path.normpath(representation_dir or default_representation_dir())
  if not os.path.isdir(representation_dir):
    raise UserError(f"representation directory {representation_dir} does not exist: run ./run.sh first (or pass "
                    f"--representation)")
  unknown = [m for m in metrics if m not in CHALLENGE_METRICS]
  if unknown:
    raise UserError(f"unknown metric(s) {', '.join(unknown)}; the challenge's are {', '.join(CHALLENGE_METRICS)}")
  experiment_dir = os.path.dirname(representation_dir)
  output_file = output_file or os.path.join(experiment_dir, "local_evaluation.json")
  print(f"[local_evaluation] {representation_dir}", flush=True)
  scores = {}
  for index, metric in enumerate(metrics, 1):
    config, key = table.metric_config(metric), table.BY_NAME[metric].headline[0][0]
    bindings = ["evaluation.random_seed = 0", f"evaluation.name = '{metric}'"]
    if dataset:
      bindings.append(f"dataset.name = '{dataset}'")
    bindings.extend(metric_bindings)
    metric_dir = os.path.join(experiment_dir, "metrics", metric)
    print(f"[local_evaluation {index}/{len(metrics)}] {metric} ...", flush=True)
    start = time.time()
    results = evaluate.evaluate_with_gin(representation_dir, metric_dir, overwrite=True,
                                         gin_config_files=[config], gin_bindings=bindings)
    if key not in results:
      raise UserError(f"{metric} returned no {key} (it returned {', '.join(sorted(results))})")
    scores[metric] = float(results[key])
    print(f"[local_evaluation {index}/{len(metrics)}] {metric} = {scores[metric]:.4f} "
          f"({time.time() - start:.0f}s)", flush=True)
  write_json_atomically(output_file, scores)
  print(f"Final scores: {json.dumps(scores)}")
  print(f"written to {output_file}")
  return scores


def main(argv=None):
  parser = cli.ArgumentParser(
      description="Score a submission's representation with the challenge's metrics (FactorVAE, DCI, SAP, MIG, "
      "IRS) as the starter kit's local_evaluation.py does.")
  parser.add_argument("--representation", help="representation directory (default: "
                      "$AICROWD_OUTPUT_PATH/$AICROWD_EVALUATION_NAME/representation)")
  parser.add_argument("--dataset", help="evaluate on this dataset.name (default: the one the model was trained on)")
  parser.add_argument("--output", help="JSON file for the scores (default: <experiment>/local_evaluation.json)")
  parser.add_argument("--metrics", default=",".join(CHALLENGE_METRICS),
                      help="comma-separated subset of the challenge's metrics (default: %(default)s)")
  cli.add_metric_bindings_arguments(parser, "dci.num_train=1000 (quick checks only)")
  args = parser.parse_args(argv)
  metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
  cli.main_guard(local_evaluation, args.representation, args.dataset, args.output, cli.metric_bindings(args),
                 metrics)


if __name__ == "__main__":
  main(sys.argv[1:])
