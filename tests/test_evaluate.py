"""`python -m trainer.evaluate` and `--eval-every-steps` (issue 13) on tiny jobs: the metrics file's exact schema
for both splits, TensorBoard scalars in logs/eval, the stdout table, `--checkpoint STEP`, the inception net from a
random-weights file, argument errors without TensorFlow, job.json's best step, and CycleGAN; plus the evaluator's
plumbing on a model whose samples are the real images themselves."""
from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT
from cyclegan_data import write_unpaired_data
from train_data import write_records

from artifacts import jobs
from trainer.evaluate import names

TINY = ["--image-size", "16", "--base-filters", "4", "--batch-size", "4", "--latent-dim", "4",
        "--summary-every-steps", "1", "--sample-every-steps", "100", "--checkpoint-every-steps", "100"]
ALL_DIGITS = [names.metric_name(metric, "digits") for metric in names.DEFAULT_METRICS]
SCHEMA = ["step", "checkpoint", "feature_net", "num_samples", "metrics"]


def train(job_dir, data_dir, model: str = "vaegan", *flags: str):
    """Train in this process (TensorFlow is loaded once for the module) with the tiny flags."""
    from trainer import loop, task

    argv = ["--model", model, "--data-dir", str(data_dir), "--job-dir", str(job_dir), *TINY, *flags]
    result = loop.train(task.resolve_config(argv), argv, stream=io.StringIO())
    assert result.state == "SUCCEEDED"
    return result


@pytest.fixture(scope="module")
def vaegan_job(tmp_path_factory):
    """A VAE-GAN trained 5 steps, evaluated every 2 steps (and at the end) on 12 samples."""
    root = tmp_path_factory.mktemp("vaegan")
    write_records(str(root / "data"), n_train=24, n_val=8, image_size=16)
    train(root / "job", root / "data", "vaegan", "--max-steps", "5", "--eval-every-steps", "2",
          "--eval-num-samples", "12")
    return root / "job"


@pytest.fixture
def job_copy(vaegan_job, tmp_path):
    """A private copy of the trained job (the command writes into it)."""
    return shutil.copytree(vaegan_job, tmp_path / "job")


def evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer.evaluate", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def read_record(job_dir, step: int) -> dict:
    path = os.path.join(str(job_dir), "eval", f"metrics-{step:07d}.json")
    with open(path) as f:
        return json.load(f)


def eval_scalars(job_dir) -> dict[tuple[str, int], float]:
    """{(tag, step): value} of every scalar in logs/eval."""
    import tensorflow as tf

    out = {}
    for path in glob.glob(os.path.join(str(job_dir), "logs", "eval", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                out[value.tag, event.step] = float(tf.make_ndarray(value.tensor))
    return out


def assert_schema(record: dict, step: int, feature_net: str, num_samples: int, metric_names: list[str]) -> None:
    assert list(record) == SCHEMA
    assert (record["step"], record["checkpoint"]) == (step, f"checkpoints/ckpt-{step}")
    assert (record["feature_net"], record["num_samples"]) == (feature_net, num_samples)
    assert list(record["metrics"]) == metric_names
    for name, values in record["metrics"].items():
        assert list(values) == ["train", "val"], name
        assert all(isinstance(v, float) and np.isfinite(v) for v in values.values()), (name, values)


# ---------------------------------------------------------------- the command line


def test_evaluate_latest_checkpoint_end_to_end(job_copy):
    shutil.rmtree(job_copy / "logs" / "eval")  # training's own evaluation also wrote step 5 there
    result = evaluate("--job-dir", job_copy, "--num-samples", 10)
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_record(job_copy, 5)
    assert_schema(record, 5, "digits", 10, ALL_DIGITS)
    ssim = record["metrics"]["ssim"]
    assert all(-1.0 <= v <= 1.0 for v in ssim.values()) and record["metrics"]["precision_digits"]["val"] <= 1.0
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["metric", "train", "val"])
    assert [line.split()[0] for line in lines[header + 1:header + 1 + len(ALL_DIGITS)]] == ALL_DIGITS
    assert f"metrics: {job_copy}/eval/metrics-0000005.json" in result.stdout
    scalars = eval_scalars(job_copy)
    for name, values in record["metrics"].items():
        for split, value in values.items():
            assert scalars[f"{name}/{split}", 5] == pytest.approx(value, rel=1e-5)


def test_evaluate_a_chosen_checkpoint_and_a_subset_of_metrics(job_copy):
    result = evaluate("--job-dir", job_copy, "--checkpoint", 2, "--metrics", "fd,ssim", "--num-samples", 8)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_schema(read_record(job_copy, 2), 2, "digits", 8, ["fd_digits", "ssim"])


def test_inception_features_from_a_weights_file_leave_out_is(job_copy, tmp_path):
    import keras

    from trainer.evaluate import features

    keras.utils.set_random_seed(0)
    weights = tmp_path / "random_notop.weights.h5"
    features.build_inception(features.INCEPTION_MIN_SIZE).save_weights(str(weights))  # same weights at any size
    result = evaluate("--job-dir", job_copy, "--feature-net", "inception", "--inception-weights", weights,
                      "--metrics", "kid,fd,is", "--num-samples", 4)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_schema(read_record(job_copy, 5), 5, "inception", 4, ["kid_inception", "fid_inception"])
    assert "note: is: left out: the inception feature net has no classifier head" in result.stdout


def test_a_gs_job_dir(vaegan_job, gcs_bucket, capsys):
    from artifacts import storage
    from trainer.evaluate.__main__ import main

    job = f"{gcs_bucket}/jobs/tiny"
    storage.copytree(str(vaegan_job), job)
    assert main(["--job-dir", job, "--checkpoint", "4", "--metrics", "kid,ssim", "--num-samples", "6"]) == 0
    assert f"metrics: {job}/eval/metrics-0000004.json" in capsys.readouterr().out
    assert_schema(storage.read_json(f"{job}/eval/metrics-0000004.json"), 4, "digits", 6, ["kid_digits", "ssim"])
    assert any(name.startswith("events.out.tfevents") for name in storage.listdir(f"{job}/logs/eval"))


PROBE = """
import contextlib, io, runpy, sys
results = []
for argv in {cases!r}:
    sys.argv = ["trainer.evaluate", *argv]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_module("trainer.evaluate", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code
    results.append((code, err.getvalue()))
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(repr((results, heavy)))
"""


def test_bad_arguments_exit_2_with_one_line_and_no_tensorflow(vaegan_job, tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"")
    job = str(vaegan_job)
    cases = {
        (): "the following arguments are required: --job-dir",
        ("--job-dir", job, "--metrics", "kid,fid"): "unknown metric 'fid'",
        ("--job-dir", job, "--num-samples", "2"): "--num-samples must be at least 4",
        ("--job-dir", job, "--num-samples", "many"): "invalid int value",
        ("--job-dir", job, "--feature-net", "inception"): "needs --inception-weights",
        ("--job-dir", job, "--feature-net", "vgg"): "invalid choice: 'vgg'",
        ("--job-dir", job, "--inception-weights", str(weights)): "goes with --feature-net inception",
        ("--job-dir", job, "--feature-net", "inception", "--inception-weights", str(tmp_path / "x")): "no such file",
        ("--job-dir", job, "--checkpoint", "3"): "no checkpoint of step 3 in checkpoints/; there are: 2, 4, 5",
        ("--job-dir", job, "--checkpoint", "best"): "must be 'latest' or a step number",
        ("--job-dir", str(tmp_path)): "is not a genart job dir",
    }
    probe = PROBE.format(cases=[list(case) for case in cases])
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    results, heavy = eval(out.stdout.strip().splitlines()[-1])
    assert heavy == []
    for (code, stderr), expected in zip(results, cases.values()):
        assert code == 2 and expected in stderr, (expected, stderr)
        assert len(stderr.strip().splitlines()) == 1, stderr


# ---------------------------------------------------------------- during training


def test_eval_options_are_checked(tmp_path):
    from trainer.task import resolve_config

    argv = ["--data-dir", "d", "--job-dir", str(tmp_path / "job")]
    config = resolve_config(argv)
    assert (config.eval_every_steps, config.eval_num_samples) == (None, 256)  # auto by default (issue 19):
    assert config.evaluation_interval() == (500, False)  # every 500 steps, not repeated at the end
    assert resolve_config(argv + ["--eval-every-steps", "0"]).evaluation_interval() == (0, False)
    assert resolve_config(argv + ["--eval-every-steps", "7"]).evaluation_interval() == (7, True)
    assert config.eval_metrics.split(",") == list(names.DEFAULT_METRICS)
    with pytest.raises(ValueError, match="--eval-metrics: unknown metric 'fid'"):
        resolve_config(argv + ["--eval-metrics", "kid,fid"])
    with pytest.raises(ValueError, match="--eval-every-steps must be >= 0"):
        resolve_config(argv + ["--eval-every-steps", "-1"])



def test_eval_every_steps_writes_metrics_and_the_best_step(vaegan_job):
    assert sorted(os.listdir(vaegan_job / "eval")) == [f"metrics-{s:07d}.json" for s in (2, 4, 5)]
    kid = {}
    for step in (2, 4, 5):
        record = read_record(vaegan_job, step)
        assert_schema(record, step, "digits", 12, ALL_DIGITS)
        kid[step] = record["metrics"]["kid_digits"]["val"]
    job = json.loads((vaegan_job / "job.json").read_text())
    assert list(job) == [*jobs.FIELDS, "best"]
    best_step = min(kid, key=kid.get)
    assert job["best"] == {"step": best_step, "metric": "kid_digits", "value": kid[best_step]}
    scalars = eval_scalars(vaegan_job)
    assert {step for tag, step in scalars if tag == "kid_digits/val"} == {2, 4, 5}
    assert jobs.checkpoint_steps(str(vaegan_job)) == [2, 4, 5]  # each evaluated step has its checkpoint


def test_cyclegan_translations_and_cycles_are_evaluated(tmp_path):
    write_unpaired_data(str(tmp_path / "data"), image_size=16, train=8, val=4)
    result = train(tmp_path / "job", tmp_path / "data", "cyclegan", "--max-steps", "2", "--n-blocks", "1",
                   "--batch-size", "2", "--pool-size", "2", "--eval-every-steps", "2", "--eval-num-samples", "6")
    record = read_record(tmp_path / "job", 2)
    assert_schema(record, 2, "digits", 6, ALL_DIGITS)  # a_to_b vs real B and b_to_a vs real A; their cycles
    from trainer.evaluate import run

    path, again, _ = run.evaluate_job(str(tmp_path / "job"), 2, ["ssim", "kid"], 4, "digits")
    assert list(again["metrics"]) == ["ssim", "kid_digits"] and path.endswith("metrics-0000002.json")
    sets = result.model.evaluation_sets(next(iter(result.model.evaluation_data(
        str(tmp_path / "data"), "val", 3))), seed=[0, 0])
    assert not sets.samples and set(sets.outputs) == {"a_to_b", "b_to_a"}
    assert {name: ref for name, (ref, _) in sets.reconstructions.items()} == {"a_to_b_to_a": "A", "b_to_a_to_b": "B"}


# ---------------------------------------------------------------- the evaluator itself


class Copycat:
    """A 'model' whose samples and reconstructions are the real digits themselves."""

    def __init__(self, splits: dict[str, np.ndarray]):
        self.splits = splits

    def evaluation_data(self, data_dir, split, batch_size):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self.splits[split]).batch(batch_size) if split in self.splits \
            else None

    def evaluation_sets(self, real_batch, seed, samples_only=False):
        from trainer.models.base import EvaluationSets

        return EvaluationSets(real={"images": real_batch}, samples={"samples": ("images", real_batch)},
                              reconstructions={} if samples_only else {"recon": ("images", real_batch)})


def test_samples_equal_to_the_real_images_score_perfectly_and_are_topped_up():
    from trainer.evaluate import digits, features, metrics
    from trainer.evaluate.evaluator import Evaluator

    images = np.repeat(digits.load_split("test")[0][:, :, :, None], 3, axis=-1).astype(np.float32) / 127.5 - 1
    evaluator = Evaluator(Copycat({"train": images[:40]}), "", features.digits_net(), list(names.DEFAULT_METRICS),
                          num_samples=60, batch_size=16)
    split = evaluator.generate("train")
    assert len(split.real["images"]) == 40 and len(split.generated["samples"][1]) == 60  # cycled to num_samples
    evaluator.num_samples = 40
    evaluation = evaluator.evaluate()
    values = {name: v["train"] for name, v in evaluation.results.items()}
    assert all(v["val"] is None for v in evaluation.results.values())
    assert any("no val split" in note for note in evaluation.notes)
    real = features.digits_net()(images[:40], (-1.0, 1.0)).features  # KID's unbiased estimate of a set with
    assert values["kid_digits"] == pytest.approx(metrics.kid_mmd2(real, real))  # itself: all subsets = the set
    assert values["fd_digits"] < 1e-6 and values["mmd"] < 1e-9
    assert values["precision_digits"] == values["recall_digits"] == values["ssim"] == pytest.approx(1.0)
    assert values["psnr"] == pytest.approx(100.0)
