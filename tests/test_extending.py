"""docs/extending.md cannot rot: its quoted code is the code of docs/examples/, and the examples run as it says.

The examples are imported only in subprocesses started from the repository root, as the guide's commands run them
(their gin ``import`` lines resolve ``docs.examples.*`` from the working directory): imported into this process,
the example latent space would join the latent spaces every other test sees (``latent_kinds``).
"""

import json
import math
import os
import re

import numpy as np
import pytest

from conftest import REPOSITORY_ROOT, read_json, run_python

GUIDE = os.path.join(REPOSITORY_ROOT, "docs", "extending.md")
EXAMPLES = os.path.join(REPOSITORY_ROOT, "docs", "examples")
# A quote: a line naming `docs/examples/FILE` and ending with ":", a blank line, then a fenced block.
QUOTE = re.compile(r"`(docs/examples/[\w.]+)`[^\n]*:\n\n```\w*\n(.*?)```", re.DOTALL)


def guide_text():
  with open(GUIDE) as f:
    return f.read()


def test_the_guide_quotes_every_example_verbatim():
  quotes = QUOTE.findall(guide_text())
  quoted = {path for path, _ in quotes}
  assert quoted == {f"docs/examples/{name}" for name in os.listdir(EXAMPLES) if not name.startswith("__")}
  for path, block in quotes:
    with open(os.path.join(REPOSITORY_ROOT, path)) as f:
      source = f.read()
    if path.endswith(".gin"):
      assert block == source, path  # a config is quoted whole
    else:
      assert block.strip() and "\n" + block in "\n" + source, path  # whole lines, in the file's order


def test_the_guide_names_the_commands_this_file_runs():
  text = " ".join(guide_text().replace("\\\n", " ").split())
  for fragment in ('./run_local.sh docs/examples/l1_vae.gin --gin_bindings '
                   '"import docs.examples.fixed_variance_gaussian" "latent_space.factory = @fixed_variance_gaussian"',
                   "python -m evaluation.batch --representations OUT/postprocessed/mean --metric_configs "
                   "docs/examples/mean_abs_correlation.gin",
                   "OUT/metrics/mean/mean_abs_correlation/results/json/evaluation_results.json"):
    assert fragment in text, fragment


PURE_METRIC = """
import json
import numpy as np
from docs.examples.mean_abs_correlation import mean_abs_correlation_of_codes as score
rng = np.random.RandomState(0)
independent = rng.normal(size=(4, 20000))
redundant = np.stack([independent[0], -2. * independent[0], 3. * independent[0] + 1.])
with_constant = np.concatenate([redundant, np.zeros((1, 20000))])
print(json.dumps([score(independent), score(redundant), score(with_constant), score(independent[:1])]))
"""


def test_the_example_metric_scores_known_codes():
  process = run_python(["-c", PURE_METRIC])
  assert process.returncode == 0, process.stderr
  independent, redundant, with_constant, single = json.loads(process.stdout.strip().splitlines()[-1])
  assert independent["num_active_codes"] == 4 and independent["mean_abs_correlation"] < 0.03
  assert redundant == {"mean_abs_correlation": pytest.approx(1.), "num_active_codes": 3}
  assert with_constant == redundant  # a constant dimension is left out
  assert single == {"mean_abs_correlation": 0., "num_active_codes": 1}


TINY_RUN = ["--dataset", "dummy_data", "--steps", "4", "--metrics", "mig", "--metric_workers", "1",
            "--gin_bindings", "import docs.examples.fixed_variance_gaussian",
            "latent_space.factory = @fixed_variance_gaussian", "fixed_variance_gaussian.variance = 0.25",
            "encoder.num_latent = 4", "model.batch_size = 8", "model.eval_steps = 2",
            "train_loop.log_every_steps = 2",
            "--metric_bindings", "mig.num_train = 200"]


def test_the_example_model_and_latent_space_train_and_the_example_metric_scores_them(tmp_path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  output = str(tmp_path / "run")
  run = run_python(["-m", "applications.run_local", "docs/examples/l1_vae.gin", "--output", output, *TINY_RUN])
  assert run.returncode == 0, run.stderr[-3000:]
  assert "[train] L1VAE on dummy_data" in run.stdout and "l1_penalty=" in run.stdout

  # The new regulariser is in the loss the model reports: β·KL + λ·L1, with λ = 0.1 from the example's gin file.
  results = read_json(os.path.join(output, "model", "results", "json", "train_results.json"))
  assert results["global_step"] == 4 and results["l1_penalty"] > 0
  assert results["regularizer"] == pytest.approx(results["kl_loss"] + 0.1 * results["l1_penalty"], rel=1e-5)
  assert results["loss"] == pytest.approx(results["reconstruction_loss"] + results["regularizer"], rel=1e-5)
  # The new latent space, with the bound variance: KL per dimension ½(μ² + σ² − log σ² − 1) ≥ its μ = 0 value.
  card = read_json(os.path.join(output, "model", "model_card.json"))
  assert (card["model"], card["latent_kind"], card["posterior"]) == ("l1_vae", "fixed_variance_gaussian",
                                                                     "diagonal Gaussian")
  assert results["kl_loss"] >= 4 * 0.5 * (0.25 - math.log(0.25) - 1.)
  encoder = tf.saved_model.load(os.path.join(output, "model", "tfhub")).signatures["gaussian_encoder"]
  images = np.random.RandomState(0).uniform(size=(3, 64, 64, 1)).astype(np.float32)
  encoded = encoder(images=tf.constant(images))
  np.testing.assert_allclose(encoded["logvar"].numpy(), np.full((3, 4), math.log(0.25)), rtol=1e-6)
  assert np.ptp(encoded["mean"].numpy(), axis=0).min() > 0  # the means depend on the image
  with open(os.path.join(output, "model", "tf_checkpoint", "train_config.gin")) as f:
    recorded = f.read()
  assert "import docs.examples.l1_vae" in recorded and "import docs.examples.fixed_variance_gaussian" in recorded

  # The new metric, by file, through batch evaluation (each pair through evaluation.evaluate, as the pipeline's).
  batch = run_python(["-m", "evaluation.batch", "--representations", os.path.join(output, "postprocessed", "mean"),
                      "--metric_configs", "docs/examples/mean_abs_correlation.gin",
                      "--metric_bindings", "mean_abs_correlation.num_train = 300"])
  assert batch.returncode == 0, batch.stderr[-3000:]
  metric_dir = os.path.join(output, "metrics", "mean", "mean_abs_correlation", "results")
  scores = read_json(os.path.join(metric_dir, "json", "evaluation_results.json"))
  assert scores["num_active_codes"] == 4
  assert math.isfinite(scores["mean_abs_correlation"]) and 0. < scores["mean_abs_correlation"] <= 1.
  with open(os.path.join(metric_dir, "gin", "evaluation.gin")) as f:
    recorded = f.read()
  assert "import docs.examples.mean_abs_correlation" in recorded
  assert "mean_abs_correlation.num_train = 300" in recorded
