"""`python -m serving.batch_predict`: batch prediction over JSON-lines or TFRecord files (INTERFACE.md section 7).

    python -m serving.batch_predict --input-paths 'gs://b/in/*.json'[,...] --output-path gs://b/out
        (--model NAME [--version N] | --model-dir EXPORT_DIR) [--data-format TEXT|TF_RECORD|TF_RECORD_GZIP]
        [--signature-name S] [--batch-size 64] [--runner DirectRunner] [other Beam pipeline options]

Owns the command line: arguments, model resolution, refusing bad runs before any work, and the closing summary
(instances read, predicted, failed, instances/s — wall clock of the whole run, start-up and model loading
included). The pipeline is `serving.batch.beam_inference`'s; files in and out and the key rule are
`serving.batch.beam_io`'s. Both import Beam and TensorFlow (seconds), so they are imported only once the arguments
are good: `--help` and argument errors answer at once. Data formats and the default batch size are
`serving.batch.options`' (light: both sides import it).
- Unknown arguments are Beam `PipelineOptions` (`--runner`, `--direct_num_workers`, `--direct_running_mode`,
  `--project`, `--region`, `--temp_location`...).
- `--model-dir` takes an export, or a model base path of numbered versions (the latest is used).
- Exit status: see USAGE_NOTES (`--help`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from artifacts import console, export, storage
from serving.batch.options import DEFAULT_BATCH_SIZE, TEXT, InputError, check_input_paths, data_format


class UsageError(Exception):
    """Exit 2 with this message."""


USAGE_NOTES = """\
inputs: TEXT files hold one JSON instance per line ({"embeddings": [...], "key": "0"} or
  {"image_bytes": {"b64": "..."}, "key": "0"}); blank lines are ignored; lines are numbered from 1.
  TF_RECORD records hold a JSON instance, a tf.train.Example with image/encoded (key: its image/filename),
  or raw encoded-image bytes (-> {"image_bytes": ...}); "line" is then the 1-based record number.
keys: a missing key becomes "<input path>:<line>" (e.g. gs://b/in/part-1.json:17); a numeric key its
  decimal string.
outputs (under --output-path, both always written): prediction.results-SSSSS-of-NNNNN, one JSON prediction per
  line; prediction.errors_stats-SSSSS-of-NNNNN, one {"key", "input_path", "line", "error"} per failed instance.
  A file that cannot be read on (a corrupt TFRecord, a truncated .gz) fails only its unread rest: one error line
  whose "line" is its first unread line/record; every other file is read to its end.
DirectRunner: unless --direct_running_mode or --direct_num_workers is given, runs multi_threading with
  min(4, max(2, CPUs)) workers (Beam's own default runs everything in one thread).
exit status: 0 the job ran (failed instances are in the errors file); 2 bad arguments, no input, outputs
  already there, unknown model/version/signature; 1 the pipeline failed.

Examples:
  python -m serving.batch_predict --input-paths 'in/*.json' --output-path out/ --model faces
  python -m serving.batch_predict --input-paths gs://b/in/part-1.json,gs://b/in/part-2.json \\
      --output-path gs://b/out --model-dir gs://b/jobs/faces/export --batch-size 32
"""


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m serving.batch_predict", allow_abbrev=False, epilog=USAGE_NOTES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Batch prediction with a genart SavedModel on Apache Beam (INTERFACE.md section 7). "
                    "Arguments not listed here are Beam pipeline options (--runner, --direct_num_workers, ...).")
    parser.add_argument("--input-paths", "--input_paths", required=True,
                        help="comma-separated files or '*' patterns, local or gs://")
    parser.add_argument("--output-path", "--output_path", required=True, help="output directory, local or gs://")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="model name in the registry ($GENART_HOME/models, local or gs://)")
    model.add_argument("--model-dir", "--model_dir", help="a SavedModel export dir, local or gs://")
    parser.add_argument("--version", help="model version (default: the latest); only with --model")
    parser.add_argument("--data-format", "--data_format", default=TEXT, type=_data_format,
                        help="TEXT (JSON instance per line, default), TF_RECORD or TF_RECORD_GZIP")
    parser.add_argument("--signature-name", "--signature_name", default=None,
                        help="signature to call (default: chosen by each instance's input names)")
    parser.add_argument("--batch-size", "--batch_size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"instances per graph call (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument(console.VERBOSE_FLAG, action="store_true", help=console.VERBOSE_HELP)
    args, beam_args = parser.parse_known_args(argv)
    if args.version is not None and not args.model:
        parser.error("--version needs --model")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args, beam_args


def _data_format(text: str) -> str:
    try:
        return data_format(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def resolve_model(args: argparse.Namespace) -> tuple[str, str, int]:
    """(export dir, model name, version) of --model/--version or --model-dir; UsageError if there is none such."""
    if args.model:
        from artifacts.model_tree import ModelTreeError, resolve_model_dir

        try:
            model_dir = resolve_model_dir(args.model, args.version)
        except ModelTreeError as err:
            raise UsageError(str(err)) from None
        return model_dir, args.model, int(model_dir.rstrip("/").rsplit("/", 1)[-1])
    model_dir = args.model_dir.rstrip("/") or args.model_dir
    if export.is_complete(model_dir):
        return model_dir, "", 0
    from artifacts.model_tree import latest_version

    version = latest_version(model_dir)  # a model base path (numbered version dirs), as TF Serving takes
    if version is None:
        raise UsageError(f"--model-dir {model_dir}: no SavedModel there ({export.SAVED_MODEL_PB} missing, and no "
                         f"numbered version dir holding one)")
    return storage.join(model_dir, str(version)), "", version


def check_signature_name(model_dir: str, signature_name: str | None) -> None:
    if not signature_name:
        return
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString(export.read_saved_model_bytes(model_dir))
    names = sorted({name for graph in proto.meta_graphs for name in graph.signature_def})
    if signature_name not in names:
        raise UsageError(f"--signature-name {signature_name!r}: the model has no such signature "
                         f"(available: {', '.join(names)})")


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = parse_args(argv)
    try:  # the user's paths first, before Beam and TensorFlow are imported (seconds)
        check_input_paths(args.input_paths)
        model_dir, model_name, version = resolve_model(args)
    except (InputError, UsageError) as err:
        print(f"batch_predict: error: {err}", file=sys.stderr)
        return 2
    console.import_tensorflow(console.set_verbose(argv))
    import apache_beam as beam

    from serving.batch import beam_io
    from serving.batch.beam_inference import MAIN_PID_ENV, SavedModelHandler, build_pipeline, counter_totals, \
        pipeline_options

    beam_io.anonymous_gcs_for_emulator()
    try:
        input_files = beam_io.expand_input_paths(args.input_paths)
        leftovers = beam_io.existing_outputs(args.output_path)
        if leftovers:
            raise UsageError(f"{args.output_path} already holds predictions of an earlier run ({leftovers[0]}, ...):"
                             f" choose another --output-path or remove them")
        check_signature_name(model_dir, args.signature_name)
    except (beam_io.InputError, UsageError) as err:
        print(f"batch_predict: error: {err}", file=sys.stderr)
        return 2
    handler = SavedModelHandler(model_dir, args.signature_name, args.batch_size, model_name, version)
    options = pipeline_options(beam_args)
    os.environ[MAIN_PID_ENV] = str(os.getpid())
    print(f"batch_predict: {len(input_files)} input file(s), model {model_dir}, batch size {args.batch_size}",
          file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        pipeline = beam.Pipeline(options=options)
        build_pipeline(pipeline, input_files, args.output_path, handler, args.data_format)
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as err:  # noqa: BLE001 - report any pipeline failure as one clear line, exit 1
        print(f"batch_predict: error: the pipeline failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    totals = counter_totals(result)
    read, predicted, failed = (totals.get(name, 0) for name in ("instances_read", "predicted", "failed"))
    print(f"batch_predict: {read:,} instances read, {predicted:,} predicted, {failed:,} failed in {elapsed:.1f} s "
          f"({read / elapsed:,.1f} instances/s)")
    print(f"batch_predict: results in {args.output_path.rstrip('/')}/{beam_io.RESULTS_PREFIX}-*, errors in "
          f"{args.output_path.rstrip('/')}/{beam_io.ERRORS_PREFIX}-*")
    if read != predicted + failed:
        print(f"batch_predict: warning: {read - predicted - failed} instances unaccounted for (runner metrics "
              f"may be incomplete)", file=sys.stderr)
    return 0
