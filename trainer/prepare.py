"""The Python half of `run_training.sh`: create (or reopen) the job and preprocess its data when needed.

    python -m trainer.prepare --source DATA [--center-crop] -- TRAINER FLAGS...

DATA is an image folder, an already preprocessed data dir (copied into the job's data dir), or a NumPy
`.npy` / `.npz` array (a pickle only with the trainer flag `--allow-pickle`). A class-conditional model (`cgan`)
has its folder preprocessed with class labels from the sub-folders.

The trainer flags are resolved exactly as `python -m trainer.task` resolves them (same function), so the data is
preprocessed at the image size the trainer will use. `python -m preprocess` runs (job state PREPARING) unless the
job's data dir already holds an up-to-date manifest.json: same source folder, image size and center-crop mode
(for unpaired CycleGAN data: `A/` and `B/` both up to date; for SPADE, label maps made with the same
`--auto-labels`, which it hands to preprocessing). Exit status: 0 when the data is ready, else
preprocess's (the job is then marked FAILED, or CANCELLED on Ctrl-C). Imports no TensorFlow itself.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from artifacts import console, dataset, jobs, storage
from artifacts.captions import MANIFEST_KEY as CAPTIONS_KEY
from preprocess import arrays
from trainer.task import resolve_config


def normalized_source(source: str) -> str:
    """The source as preprocess records it in manifest.json (absolute for local folders)."""
    return source.rstrip("/") if storage.is_gcs(source) else os.path.abspath(source)


def stale_reason(data_dir: str, source: str, image_size: int, center_crop: bool,
                 labels: bool = False, captions: bool = False, auto_labels: int | None = None) -> str | None:
    """Why `data_dir` must be (re)built from `source`, or None when its manifest(s) are up to date."""
    prepared = dataset.find_manifest(source) if storage.isdir(source) else None
    if prepared is not None:  # already preprocessed: the job trains on a copy
        return None if dataset.find_manifest(data_dir) == prepared else f"a copy of the preprocessed {source}"
    if labels and dataset.find_manifest(data_dir) is not None and not dataset.find_manifest(data_dir).get("classes"):
        return "class labels needed"
    if captions and dataset.find_manifest(data_dir) is not None and \
            CAPTIONS_KEY not in dataset.find_manifest(data_dir):
        return "captions needed"
    if auto_labels is not None and dataset.find_manifest(data_dir) is not None:  # a label map model (SPADE)
        manifest = dataset.find_manifest(data_dir)
        if not dataset.class_colors(manifest) or manifest.get("auto_labels", 0) != auto_labels:
            return "label maps needed" if not dataset.class_colors(manifest) else "--auto-labels changed"
    for paths in dataset.manifest_layouts(data_dir):
        if all(storage.exists(p) for p in paths):
            for path in paths:
                manifest = storage.read_json(path)
                wanted = {"source": normalized_source(source), "image_size": image_size, "center_crop": center_crop}
                found = {"source": str(manifest.get("source", "")).rstrip("/"),
                         "image_size": manifest.get("image_size"), "center_crop": bool(manifest.get("center_crop"))}
                changed = [f"{k} {found[k]!r} -> {wanted[k]!r}" for k in wanted if found[k] != wanted[k]]
                if changed:
                    return "settings changed: " + ", ".join(changed)
            return None
    return "no manifest.json yet"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="the image folder (local or gs://)")
    parser.add_argument("--center-crop", action="store_true")
    parser.add_argument("trainer_args", nargs=argparse.REMAINDER, help="-- then the trainer's flags")
    args = parser.parse_args(argv)
    trainer_args = args.trainer_args[1:] if args.trainer_args[:1] == ["--"] else args.trainer_args
    try:  # everything the user typed is checked before a job record is written
        config = resolve_config(trainer_args, source=args.source)
        name = jobs.job_name(config.job_dir)
        is_array = arrays.is_array_file(args.source)
        labels = bool(getattr(config, "conditional", False))
        auto_labels = getattr(config, "auto_labels", 0) if getattr(config, "label_maps", False) else None
        center_crop = args.center_crop or is_array  # arrays are stored at the image size
        captions = getattr(config, "CAPTIONED", False)
        reason = stale_reason(config.data_dir, args.source, config.image_size, center_crop, labels, captions,
                              auto_labels)
        if reason is not None and is_array:
            arrays.check_source(args.source, getattr(config, "allow_pickle", False))
        elif reason is not None and not storage.isdir(args.source):
            raise ValueError(f"-d {args.source}: no such image folder")
        existed = jobs.read(config.job_dir) is not None
        job = jobs.Job.open(config.job_dir, model=config.model, data_dir=config.data_dir,
                            max_steps=config.max_steps, args=trainer_args)
    except (ValueError, OSError, arrays.PreprocessError) as err:
        return console.usage_error(err)
    print(f"job {name}: resuming it ({config.job_dir})" if existed else f"job {name}: {config.job_dir}", flush=True)
    if reason is None:
        print(f"data: {config.data_dir} is up to date")
        return 0
    job.set_state(jobs.PREPARING)
    if dataset.find_manifest(args.source) is not None and storage.isdir(args.source):
        print(f"copying the preprocessed {args.source} -> {config.data_dir}", flush=True)
        storage.rmtree(config.data_dir)
        storage.copytree(args.source, config.data_dir)
        return 0
    print(f"preprocessing {args.source} -> {config.data_dir} ({reason})", flush=True)
    command = [sys.executable, "-m", "preprocess", "--input-dir", args.source, "--output-dir", config.data_dir,
               "--image-size", str(config.image_size)] + (["--center-crop"] if args.center_crop else [])
    command += ["--class-labels"] if labels and not is_array else []
    command += ["--captions"] if captions and not is_array else []
    command += ["--auto-labels", str(auto_labels)] if auto_labels else []
    command += ["--allow-pickle"] if getattr(config, "allow_pickle", False) else []
    try:
        status = subprocess.call(command)
    except KeyboardInterrupt:
        status = 130
    if status == 2 and not existed:  # the folder held no usable image: a mistake, not a job worth listing
        storage.rmtree(config.job_dir)
    elif status:
        state = jobs.CANCELLED if status in (130, -2) else jobs.FAILED
        job.set_state(state, error=f"preprocessing {args.source} failed (exit status {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
