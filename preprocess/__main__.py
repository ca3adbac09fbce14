"""`python -m preprocess`: the command line of INTERFACE.md section 1 (arguments, exit codes, summary line).

Arguments are parsed before TensorFlow is imported, so `--help` and usage errors are instant. Exit status: 0 on
success (skipped files are listed in manifest.json and counted in the summary), 2 when the input dir is missing,
no image at all is usable, or the output dir holds files a previous run did not write.
"""
from __future__ import annotations

import argparse
import os
import sys

from artifacts import console
from artifacts.captions import CAPTIONS_CSV, CAPTIONS_JSONL, TEXT_VAL_FRACTION, CaptionsError, captions_file
from artifacts.labels import MAX_CLASSES
from preprocess import arrays, paths

DEFAULT_VAL_FRACTION = 0.1

EPILOG = """\
Writes train-SSSSS-of-NNNNN.tfrecord, val-SSSSS-of-NNNNN.tfrecord and manifest.json (last) to OUTPUT_DIR,
replacing a previous run's shards. An input holding trainA/ and trainB/ (optionally testA/ testB/, used as the
val split) is an unpaired CycleGAN set and is written to OUTPUT_DIR/A/ and OUTPUT_DIR/B/. An input holding
images/ and labels/ (same stems; optional labels.json) is a SPADE pair set: each record also stores its label map.
Both dirs may be gs://bucket/prefix URLs.

Examples:
  python -m preprocess --input-dir examples/images --output-dir /tmp/genart-data --center-crop --image-size 32
  python -m preprocess --input-dir gs://my-bucket/photos --output-dir gs://my-bucket/data --workers 4"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _color_count(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_CLASSES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_CLASSES} (an index PNG holds one byte), got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m preprocess",
        description="Turn a folder of images (.jpg .jpeg .png .gif .bmp .webp, recursive) into sharded TFRecords.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", required=True,
                        help="image folder, local or gs://; or a NumPy .npy / .npz array of images")
    parser.add_argument("--output-dir", required=True, help="where the shards and manifest.json go, local or gs://")
    parser.add_argument("--center-crop", action="store_true",
                        help="store the central square at --image-size (default: shorter side at "
                             "round(1.125 * image size), for a fresh random crop every epoch)")
    parser.add_argument("--image-size", type=_positive_int, default=64, help="training image size (default 64)")
    parser.add_argument("--val-fraction", type=_fraction, default=None,
                        help=f"share of images held out for validation (default {DEFAULT_VAL_FRACTION}; "
                             f"{TEXT_VAL_FRACTION} for captioned images, whose split is caption-disjoint)")
    parser.add_argument("--shards", type=_positive_int, default=None,
                        help="shards per split (default: one per ~2000 images)")
    parser.add_argument("--workers", type=_positive_int, default=None,
                        help="parallel decode/resize processes (default: one per CPU, fewer for small inputs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    parser.add_argument("--class-labels", action="store_true",
                        help="label each image by its first-level sub-folder (sorted names are the classes)")
    parser.add_argument("--captions", action="store_true",
                        help=f"store a caption per image (text -> image): from {CAPTIONS_CSV} or {CAPTIONS_JSONL} in "
                             "the input dir, else from the folder and file name (red_circles/03.png -> 'red circles');"
                             " on by itself when the input dir has a captions file")
    parser.add_argument("--auto-labels", type=_color_count, default=0, metavar="K",
                        help="SPADE: make label maps by K-colour quantisation of the images (deterministic for "
                             "--seed); an input holding images/ + labels/ (and labels.json) has its own label maps")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="accept a pickled array (.p, .pkl): only for a file you trust, a pickle can run code")
    parser.add_argument(console.VERBOSE_FLAG, action="store_true", help=console.VERBOSE_HELP)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # the paths first, before TensorFlow: a typo is one line at once
        if arrays.is_array_file(args.input_dir):
            arrays.check_source(args.input_dir, args.allow_pickle)
        else:
            paths.check_input_dir(args.input_dir)
        paths.check_output_dir(args.output_dir)
    except paths.PreprocessError as exc:
        print(f"preprocess: error: {exc}", file=sys.stderr)
        return 2
    console.import_tensorflow(console.set_verbose(argv))
    from preprocess import pipeline  # imports TensorFlow: only after the arguments are known to be good

    is_array = arrays.is_array_file(args.input_dir)
    captions = args.captions or (not is_array and captions_file(args.input_dir) is not None)
    val_fraction = args.val_fraction if args.val_fraction is not None else (
        TEXT_VAL_FRACTION if captions else DEFAULT_VAL_FRACTION)
    options = pipeline.Options(image_size=args.image_size, center_crop=args.center_crop, captions=captions,
                               val_fraction=val_fraction, shards=args.shards, workers=args.workers,
                               seed=args.seed, class_labels=args.class_labels, auto_labels=args.auto_labels)
    try:
        if arrays.is_array_file(args.input_dir):
            summary = arrays.run(args.input_dir, args.output_dir, options, args.allow_pickle)
        else:
            summary = pipeline.run(args.input_dir, args.output_dir, options)
    except (pipeline.PreprocessError, CaptionsError) as exc:
        print(f"preprocess: error: {exc}", file=sys.stderr)
        return 2
    line = summary.line()
    try:
        print(line)
    except UnicodeEncodeError:  # a terminal whose encoding has no "→"
        print(line.replace("→", "->"))
    return 0


if __name__ == "__main__":
    # The command is CPU work: hide GPUs from it (and its workers) so it never holds a GPU's memory that a
    # training job may need. Only here, not in main(), which other code may call in a process that trains.
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    sys.exit(main())
