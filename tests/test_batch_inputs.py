"""Batch prediction survives bad input files (issue 12), and reads big files in ranges.

The job: four TF_RECORD files, one good, one with a flipped byte inside its third record, one truncated `.gz` and
one `.gz` that is not gzip at all. The job must succeed: every readable record is predicted, and the unread rest
of each bad file is one line of `errors_stats` naming the file and its first unread record.
The reader: a file cut into ranges (at line/record boundaries) reads exactly what the whole file reads, with the
same line numbers, and a corrupt record ends only its own range.
"""
from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest
from serving_helpers import export_path, random_embedding, read_batch_outputs
from test_batch_predict import run_main

from serving.batch import readers
from serving.batch.options import TEXT, TF_RECORD


def embedding_records(prefix: str, count: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [json.dumps({"embeddings": random_embedding(rng), "key": f"{prefix}-{i}"}).encode()
            for i in range(count)]


def tfrecord_bytes(records: list[bytes]) -> bytes:
    import tensorflow as tf

    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"records-{os.getpid()}.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def flip_byte_in_record(data: bytes, record: int) -> bytes:
    """`data` with one byte flipped in the payload of its `record`-th (1-based) record."""
    offset = 0
    for _ in range(record - 1):
        offset += 16 + int.from_bytes(data[offset:offset + 8], "little")
    position = offset + 12 + 5
    return data[:position] + bytes([data[position] ^ 0x40]) + data[position + 1:]


@pytest.fixture(scope="module")
def bad_files_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("batch-bad-files"))
    files = {
        "good.tfrecord": tfrecord_bytes(embedding_records("good", 3)),
        "flipped.tfrecord": flip_byte_in_record(tfrecord_bytes(embedding_records("flipped", 5, 1)), 3),
        "cut.tfrecord.gz": gzip.compress(tfrecord_bytes(embedding_records("cut", 40, 2)))[:-400],
        "plain.tfrecord.gz": b"this is not gzip at all\n",
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    out = os.path.join(root, "out")
    code, stdout, stderr = run_main(["--input-paths", f"{root}/*.tfrecord*", "--output-path", out,
                                     "--model-dir", export_path("vaegan", 1), "--data-format", "tf-record"])
    assert code == 0, stderr
    return {"root": root, "stdout": stdout, **read_batch_outputs(out)}


def test_a_corrupt_or_unreadable_file_fails_only_its_unread_rest(bad_files_run):
    root = bad_files_run["root"]
    results = {row["key"] for row in bad_files_run["results"]}
    errors = {row["input_path"]: row for row in bad_files_run["errors"]}
    assert {f"good-{i}" for i in range(3)} <= results  # every other file finishes
    assert {"flipped-0", "flipped-1"} <= results and not {"flipped-2", "flipped-3", "flipped-4"} & results
    assert sorted(errors) == sorted(f"{root}/{name}" for name in ("flipped.tfrecord", "cut.tfrecord.gz",
                                                                  "plain.tfrecord.gz"))
    assert len(bad_files_run["errors"]) == 3  # one line per bad file, not one per unread record
    flipped = errors[f"{root}/flipped.tfrecord"]
    assert (flipped["line"], flipped["key"]) == (3, f"{root}/flipped.tfrecord:3")
    assert "record 3" in flipped["error"] and "flipped.tfrecord" in flipped["error"]
    cut = errors[f"{root}/cut.tfrecord.gz"]
    read_from_cut = sorted(int(key.split("-")[1]) for key in results if key.startswith("cut-"))
    assert read_from_cut == list(range(len(read_from_cut))) and 0 < len(read_from_cut) < 40
    assert cut["line"] == len(read_from_cut) + 1  # the first unread record
    plain = errors[f"{root}/plain.tfrecord.gz"]
    assert plain["line"] == 1 and "plain.tfrecord.gz" in plain["error"]
    read = 3 + 2 + len(read_from_cut)
    assert f"{read + 3:,} instances read, {read:,} predicted, 3 failed" in bad_files_run["stdout"]


# ---------------------------------------------------------------- ranges (no Beam)


def read_all(path: str, data_format: str, range_bytes: int) -> list:
    rows = []
    for part in readers.file_ranges(path, data_format, range_bytes):
        rows.extend(readers.read_range(part, data_format))
    return rows


def test_text_ranges_keep_line_numbers(tmp_path):
    lines = [f'{{"key": "k{i}", "pad": "{"x" * (i % 37)}"}}' if i % 9 else "  " for i in range(400)]
    path = str(tmp_path / "in.json")
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n\n")
    whole = read_all(path, TEXT, 1 << 30)
    assert len(readers.file_ranges(path, TEXT, 200)) > 20
    assert read_all(path, TEXT, 200) == whole
    assert [(s.line, raw) for s, raw in whole] == [(i + 1, line.encode()) for i, line in enumerate(lines)
                                                   if line.strip()]


def test_tfrecord_ranges_and_a_corrupt_record_ends_only_its_range(tmp_path):
    records = embedding_records("r", 30)
    path = str(tmp_path / "in.tfrecord")
    with open(path, "wb") as f:
        f.write(tfrecord_bytes(records))
    parts = readers.file_ranges(path, TF_RECORD, 7000)
    assert len(parts) > 3 and read_all(path, TF_RECORD, 7000) == read_all(path, TF_RECORD, 1 << 30)
    with open(path, "wb") as f:
        f.write(flip_byte_in_record(tfrecord_bytes(records), 2))
    parts = readers.file_ranges(path, TF_RECORD, 7000)
    rows = read_all(path, TF_RECORD, 7000)
    unread = [(s.line, raw) for s, raw in rows if isinstance(raw, readers.Unreadable)]
    assert [line for line, _ in unread] == [2]
    assert f"records 2 to {parts[1].first - 1}" in unread[0][1].message
    assert [s.line for s, raw in rows if not isinstance(raw, readers.Unreadable)] == \
        [1] + list(range(parts[1].first, 31))


def test_truncated_gzip_text_reads_what_it_can(tmp_path):
    lines = [json.dumps({"key": f"k{i}", "pad": "y" * 40 + str(i * 7919 % 1000)}) for i in range(3000)]
    path = str(tmp_path / "in.json.gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(("\n".join(lines) + "\n").encode())[:-2000])
    rows = read_all(path, TEXT, 100)  # a compressed file is one range, whatever the range size
    read = [(s.line, raw) for s, raw in rows if not isinstance(raw, readers.Unreadable)]
    assert 0 < len(read) < 3000 and read == [(i + 1, lines[i].encode()) for i in range(len(read))]
    assert len(rows) == len(read) + 1 and rows[-1][0].line == len(read) + 1
    assert "line" in rows[-1][1].message and "to the end of the file" in rows[-1][1].message


def test_ranges_on_gcs(gcs_bucket, tmp_path):
    """gs:// files are cut and read the same way (Beam's seekable GCS reader)."""
    from artifacts import storage
    from serving.batch import beam_io

    beam_io.anonymous_gcs_for_emulator()  # no credential look-up against the emulator

    records = embedding_records("g", 12)
    lines = [record.decode() for record in records]
    local = str(tmp_path / "in.tfrecord")
    with open(local, "wb") as f:
        f.write(tfrecord_bytes(records))
    storage.upload_file(local, f"{gcs_bucket}/in.tfrecord")
    storage.write_text(f"{gcs_bucket}/in.json", "\n".join(lines) + "\n")
    for name, data_format, expected in (("in.tfrecord", TF_RECORD, records), ("in.json", TEXT, lines)):
        path = f"{gcs_bucket}/{name}"
        assert len(readers.file_ranges(path, data_format, 5000)) > 2
        rows = read_all(path, data_format, 5000)
        assert [(s.line, raw) for s, raw in rows] == [(i + 1, r if isinstance(r, bytes) else r.encode())
                                                      for i, r in enumerate(expected)]
