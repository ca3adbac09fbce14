"""Files in and out of batch prediction (INTERFACE.md section 7): instances with their place, and the two outputs.

Owns, for `serving.batch` (`python -m serving.batch_predict`):
- finding the inputs: comma-separated paths with `*` wildcards, local or `gs://`, through Beam's own file systems
  (`expand_input_paths`; a pattern that matches nothing is an `InputError`);
- reading them (`ReadInstances`) in ranges spread over workers, every instance keeping its place, a
  `Source(input_path, line)`; the unread rest of a file that cannot be read on becomes one error record (the
  ranges, line numbers and compression are `serving.batch.readers`');
- turning raw lines/records into JSON instances (`ParseInstances`), the TF_RECORD record kinds being: a JSON
  instance (UTF-8 text starting with `{` or `[`); a `tf.train.Example` with `image/encoded` (as `python -m
  preprocess` writes) -> `{"image_bytes": <image>, "key": <image/filename>}`; anything else: raw encoded-image
  bytes -> `{"image_bytes": <bytes>}`. A line that is not JSON becomes an error record at once;
- the key rule of batch prediction: a missing `key` is `"<input_path>:<line>"` (the path as matched, e.g.
  `gs://b/in/part-1.json:17`; unique across files, stable, and it says where the instance is); a numeric key is
  its decimal string; the key of a line that is not JSON is recovered from its text when it can be, else the
  same `<input_path>:<line>`;
- the outputs under `--output-path`: `prediction.results-SSSSS-of-NNNNN` (one JSON prediction per line) and
  `prediction.errors_stats-SSSSS-of-NNNNN` (one `{"key", "input_path", "line", "error"}` per failed instance, or
  per unread rest of a file: its first unread line/record), both written even when empty.

Beam's `gs://` IO honours `STORAGE_EMULATOR_HOST` (google-cloud-storage does); when it is set, Beam is told up
front that there are no credentials (an emulator needs none), instead of retrying Google default credentials for
~20 s in every process.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from artifacts.export import IMAGE_BYTES, KEY
from serving.batch import readers
from serving.batch.options import TEXT, InputError, input_patterns
from serving.batch.readers import Source
from serving.server import values as V

RESULTS_PREFIX = "prediction.results"
ERRORS_PREFIX = "prediction.errors_stats"
SHARD_TEMPLATE = "-SSSSS-of-NNNNN"
ERRORS_TAG = "errors"
METRICS_NAMESPACE = "genart.batch_predict"  # counters: instances_read, predicted, failed
_KEY_IN_TEXT = re.compile(rf'"{KEY}"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')





def anonymous_gcs_for_emulator() -> None:
    """With STORAGE_EMULATOR_HOST set, make Beam's gs:// IO connect anonymously (see the module docstring)."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    from apache_beam.internal.gcp import auth  # Beam's credential cache: None means "connect anonymously"

    with auth._Credentials._credentials_lock:
        auth._Credentials._credentials, auth._Credentials._credentials_init = None, True


anonymous_gcs_for_emulator()  # at import, so Beam worker processes (which import this module) do it too


# ---------------------------------------------------------------- keys and error records


def key_text(value: Any) -> str | None:
    """A JSON key value as the key string predictions carry: a string as is, a number its decimal string."""
    if isinstance(value, str):
        return value
    if type(value) in (int, float):
        try:
            return V.decimal_string(value)
        except ValueError:
            return None
    return None


def instance_key(instance: Any, source: Source) -> str:
    """The key an instance's prediction or error carries (its own when usable, else `<input_path>:<line>`)."""
    given = instance.get(KEY) if isinstance(instance, dict) and not V.is_b64_object(instance) else None
    return key_text(given) or source.default_key


def error_record(source: Source, key: str, message: str) -> dict:
    """One line of `prediction.errors_stats-*`."""
    return {"key": key, "input_path": source.input_path, "line": source.line, "error": message}


# ---------------------------------------------------------------- finding and reading inputs


def expand_input_paths(input_paths: str) -> list[str]:
    """Comma-separated paths/patterns -> the matched files, in pattern order, each once. InputError when a pattern
    matches nothing or names a directory."""
    files: list[str] = []
    for pattern in input_patterns(input_paths):
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as err:  # noqa: BLE001 - Beam wraps every file-system failure in its own types
            raise InputError(f"cannot list input path {pattern!r}: {err}") from None
        paths = sorted(m.path for m in matched if not m.path.endswith("/"))
        if not paths:
            raise InputError(f"no input file matches {pattern!r}")
        files.extend(p for p in paths if p not in files)
    return files


def existing_outputs(output_path: str) -> list[str]:
    """Prediction files an earlier run left under `output_path` (a new run refuses to mix its shards with them)."""
    found = []
    for prefix in (RESULTS_PREFIX, ERRORS_PREFIX):
        try:
            found += [m.path for m in FileSystems.match([_join(output_path, prefix + "-*")])[0].metadata_list]
        except Exception:  # noqa: BLE001 - an output path that does not exist yet holds nothing
            pass
    return found


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


class ReadInstances(beam.PTransform):
    """PCollection of file paths -> PCollection of (Source, raw line or record bytes | readers.Unreadable): each
    file cut into ranges (`readers.file_ranges`), the ranges spread over workers, each read streaming."""

    def __init__(self, data_format: str, range_bytes: int = readers.RANGE_BYTES):
        super().__init__()
        self._data_format, self._range_bytes = data_format, range_bytes

    def expand(self, paths):
        return (paths
                | "Ranges" >> beam.FlatMap(readers.file_ranges, self._data_format, self._range_bytes)
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.FlatMap(readers.read_range, self._data_format))


# ---------------------------------------------------------------- raw -> JSON instances


def parse_text_line(source: Source, raw: bytes) -> Any:
    """A JSON-lines line -> its JSON value; ValueError saying what is wrong otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"line is not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        detail = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise ValueError(f"not a JSON instance: {detail}") from None


def parse_record(source: Source, record: bytes) -> Any:
    """A TF_RECORD record -> a JSON instance (see the module docstring for the three record kinds)."""
    if record.lstrip()[:1] in (b"{", b"["):
        return parse_text_line(source, record)
    example = _image_example(record)
    if example is not None:
        return example
    return {IMAGE_BYTES: V.encode_b64(record)}


def _image_example(record: bytes) -> dict | None:
    import tensorflow as tf  # only TF_RECORD inputs need the tf.train.Example proto

    try:
        features = tf.train.Example.FromString(record).features.feature
    except Exception:  # noqa: BLE001 - not a serialized Example: raw image bytes
        return None
    encoded = features["image/encoded"].bytes_list.value if "image/encoded" in features else []
    if len(encoded) != 1:
        return None
    instance = {IMAGE_BYTES: V.encode_b64(encoded[0])}
    filename = features["image/filename"].bytes_list.value if "image/filename" in features else []
    if filename and filename[0]:
        instance[KEY] = filename[0].decode("utf-8", "replace")
    return instance


def recovered_key(raw: bytes, source: Source) -> str:
    """The key of a line that is not valid JSON, when its text still shows one; else `<input_path>:<line>`."""
    match = _KEY_IN_TEXT.search(raw.decode("utf-8", "replace"))
    if match:
        try:
            return key_text(json.loads(match.group(1))) or source.default_key
        except ValueError:
            pass
    return source.default_key


class ParseInstances(beam.DoFn):
    """(Source, raw) -> (Source, JSON instance) on the main output, or an error record on `ERRORS_TAG`.
    Counts every instance read (`instances_read`) and every unparseable one (`failed`)."""

    def __init__(self, data_format: str):
        self._parse = parse_text_line if data_format == TEXT else parse_record
        self._read = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "instances_read")
        self._failed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "failed")

    def process(self, element):
        source, raw = element
        self._read.inc()
        if isinstance(raw, readers.Unreadable):  # the unread rest of a file: one error line
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, error_record(source, source.default_key, raw.message))
            return
        try:
            yield source, self._parse(source, raw)
        except ValueError as err:
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, error_record(source, recovered_key(raw, source), str(err)))


# ---------------------------------------------------------------- outputs


class WriteJsonLines(beam.PTransform):
    """PCollection of JSON-ready dicts -> `<output_path>/<prefix>-SSSSS-of-NNNNN`, one per line (always written)."""

    def __init__(self, output_path: str, prefix: str):
        super().__init__()
        self._path_prefix = _join(output_path, prefix)

    def expand(self, rows):
        return (rows
                | "ToJson" >> beam.Map(json.dumps, ensure_ascii=False)
                | "Write" >> beam.io.WriteToText(self._path_prefix, shard_name_template=SHARD_TEMPLATE))
