"""Text -> image on the procedural captioned set (`examples/captioned`, `scripts/captioned.py`): seed 004's
train / test table. The data is preprocessed (caption-disjoint 80/20 split: the test prompts are unseen
combinations of seen words), a `text2image` job is trained through the real trainer, then evaluated:
- `hue_match`: the share of images painted for the split's prompts (8 keys each, through the exported `text`
  signature) whose dominant hue is the prompt's colour word (chance 1/6);
- section 9's metrics (`python -m trainer.evaluate`, digits feature net), samples generated from the split's
  captions.

    python bench/text_quality.py                        # 16 px, 1,500 steps (the CI test's setting)
    python bench/text_quality.py --image-size 32 --steps 4000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
EXAMPLES = os.path.join(REPO_ROOT, "examples", "captioned")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--samples", type=int, default=256, help="samples per split for the evaluation")
    parser.add_argument("--metrics", default="kid,fd,mmd,precision,recall")
    parser.add_argument("--work-dir", default=None, help="keep the data and the job here (default: a temp dir)")
    return parser.parse_args(argv)


def split_prompts(data_dir: str, split: str) -> list[str]:
    from artifacts.dataset import split_files
    from preprocess.records import make_dataset

    dataset = make_dataset(split_files(data_dir, split), 16, True, 256, training=False, drop_remainder=False,
                           captions=True)
    return sorted({caption.decode() for _, batch in dataset for caption in batch.numpy()})


def main(argv=None) -> int:
    args = parse_args(argv)
    work = args.work_dir or tempfile.mkdtemp(prefix="genart-text-bench-")
    data, job = os.path.join(work, "data"), os.path.join(work, "job")
    python = [sys.executable, "-m"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    subprocess.run(python + ["preprocess", "--input-dir", EXAMPLES, "--output-dir", data, "--image-size",
                             str(args.image_size), "--center-crop", "--workers", "1"], check=True, env=env)
    start = time.monotonic()
    subprocess.run(python + ["trainer.task", "--data-dir", data, "--job-dir", job, "--model", "text2image",
                             "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--base-filters",
                             str(args.filters), "--eval-every-steps", "0", "--summary-every-steps", "500"],
                   check=True, env=env)
    seconds = time.monotonic() - start
    subprocess.run(python + ["trainer.evaluate", "--job-dir", job, "--metrics", args.metrics, "--num-samples",
                             str(args.samples)], check=True, env=env, stdout=subprocess.DEVNULL)
    from scripts.captioned import hue_match

    evaluation = sorted(os.listdir(os.path.join(job, "eval")))[-1]
    metrics = json.load(open(os.path.join(job, "eval", evaluation)))["metrics"]
    prompts = {split: split_prompts(data, split) for split in ("train", "val")}
    rows = {"hue_match": {split: hue_match(os.path.join(job, "export"), prompts[split]) for split in prompts},
            **metrics}
    print(f"\n{args.image_size} px, {args.steps} steps, batch {args.batch_size}, width {args.filters}: "
          f"{seconds:.0f} s of training (wall); prompts: {len(prompts['train'])} train, {len(prompts['val'])} test "
          f"(unseen combinations)")
    print(f"| metric | train prompts | test prompts |\n|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {values['train']:.4g} | {values['val']:.4g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
