"""Reading batch-prediction input files, streaming and in ranges, so that a bad file fails only its unread rest.

- An instance's place is a `Source(input_path, line)`: TEXT one JSON instance per line (lines numbered from 1, blank
  lines skipped and not instances, a UTF-8 byte-order mark dropped), TF_RECORD one instance per record (`line` =
  its 1-based record number).
- Splittable: an uncompressed file bigger than `RANGE_BYTES` is cut into `FileRange`s at line (TEXT) or record
  (TF_RECORD, walking the length headers only) boundaries, each knowing the number of its first line, and the
  ranges are read independently, by any worker. A compressed file (any compression Beam detects by extension, or
  TF_RECORD_GZIP) is one range. Nothing is buffered beyond one line or record.
- Unreadable input never fails the job: when a range cannot be read on (a corrupt TFRecord, a truncated or
  invalid compressed file, an I/O error), reading yields one `(Source(path, first unread line), Unreadable(...))`
  naming the file and the first unread line/record, and stops that range; other ranges and files go on.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from typing import Iterator, NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil  # Beam's masked CRC32C of the TFRecord framing

from serving.batch.options import TEXT, TF_RECORD_GZIP

RANGE_BYTES = 4 << 20  # uncompressed files are read in ranges of about this size
_SCAN_BLOCK = 1 << 20
_STDLIB_DECOMPRESSORS = {CompressionTypes.GZIP: gzip.GzipFile, CompressionTypes.BZIP2: bz2.BZ2File,
                         CompressionTypes.LZMA: lzma.LZMAFile}  # these raise EOFError on a truncated file


class Source(NamedTuple):
    """An instance's place: the input file (as matched) and its 1-based line (TEXT) or record number (TF_RECORD)."""
    input_path: str
    line: int

    @property
    def default_key(self) -> str:
        return f"{self.input_path}:{self.line}"


class FileRange(NamedTuple):
    """Bytes [start, end) of a file (end None: to its end), starting at line/record number `first`; `stop` is the
    number of the first line/record after the range (None: unknown, the range runs to the end of the file)."""
    path: str
    start: int = 0
    end: int | None = None
    first: int = 1
    stop: int | None = None


class Unreadable(NamedTuple):
    """In place of raw bytes: the range could not be read on from this Source; `message` says what and why."""
    message: str


def _compression(path: str, data_format: str) -> str:
    return CompressionTypes.GZIP if data_format == TF_RECORD_GZIP else CompressionTypes.detect_compression_type(path)


def _open(path: str, compression: str):
    if compression in _STDLIB_DECOMPRESSORS:
        raw = FileSystems.open(path, mime_type="application/octet-stream",
                               compression_type=CompressionTypes.UNCOMPRESSED)
        return _STDLIB_DECOMPRESSORS[compression](fileobj=raw) if compression == CompressionTypes.GZIP \
            else _STDLIB_DECOMPRESSORS[compression](raw)
    return FileSystems.open(path, mime_type="application/octet-stream", compression_type=compression)


# ---------------------------------------------------------------- cutting files into ranges


def file_ranges(path: str, data_format: str, range_bytes: int = RANGE_BYTES) -> list[FileRange]:
    """The ranges `path` is read in: one for a compressed or small file, else cut at line/record boundaries about
    every `range_bytes`. A file that cannot be scanned is one range (reading it reports what is wrong)."""
    whole = [FileRange(path)]
    if _compression(path, data_format) != CompressionTypes.UNCOMPRESSED:
        return whole
    try:
        if FileSystems.match([path])[0].metadata_list[0].size_in_bytes <= range_bytes:
            return whole
        with _open(path, CompressionTypes.UNCOMPRESSED) as handle:
            cuts = list(_line_cuts(handle, range_bytes) if data_format == TEXT else _record_cuts(handle, range_bytes))
    except Exception:  # noqa: BLE001 - any failure here is reported by reading the range
        return whole
    ranges, start, first = [], 0, 1
    for end, stop in cuts:
        ranges.append(FileRange(path, start, end, first, stop))
        start, first = end, stop
    return ranges + [FileRange(path, start, None, first)]


def _line_cuts(handle, range_bytes: int) -> Iterator[tuple[int, int]]:
    """(offset just after a newline, number of the line starting there), about every `range_bytes`."""
    offset, newlines, start = 0, 0, 0  # bytes and newlines before `block`; start of the current range
    while block := handle.read(_SCAN_BLOCK):
        at = 0
        while (at := max(at, start + range_bytes - 1 - offset)) < len(block):
            found = block.find(b"\n", at)
            if found < 0:
                break
            start, at = offset + found + 1, found + 1
            yield start, newlines + block.count(b"\n", 0, at) + 1
        newlines += block.count(b"\n")
        offset += len(block)


def _record_cuts(handle, range_bytes: int) -> Iterator[tuple[int, int]]:
    """(offset of a record, its number), about every `range_bytes`; stops at the first bad length header."""
    offset, number, start = 0, 1, 0
    while len(header := handle.read(12)) == 12:
        length, mask = struct.unpack("<QI", header)
        if _TFRecordUtil._masked_crc32c(header[:8]) != mask:
            return
        offset += 16 + length
        number += 1
        handle.seek(offset)
        if offset - start >= range_bytes:
            start = offset
            yield offset, number


# ---------------------------------------------------------------- reading a range


def read_range(part: FileRange, data_format: str) -> Iterator[tuple[Source, bytes | Unreadable]]:
    """(Source, line or record bytes) for every instance of the range; then, if it could not be read to its end,
    one (Source of the first unread line/record, Unreadable)."""
    read = _text_lines if data_format == TEXT else _records
    unread = part.first
    try:
        with _open(part.path, _compression(part.path, data_format)) as handle:
            if part.start:
                handle.seek(part.start)
            for number, raw in read(handle, part):
                yield Source(part.path, number), raw
                unread = number + 1
    except Exception as err:  # noqa: BLE001 - whatever stops the reading, the rest of this range is unread
        unread = getattr(err, "unread", unread)  # set by the readers: blank lines count too
        yield Source(part.path, unread), Unreadable(_unread_message(part, unread, err, data_format))


def _text_lines(handle, part: FileRange) -> Iterator[tuple[int, bytes]]:
    position, number = part.start, part.first - 1
    while (part.end is None or position < part.end) and (raw := _readline(handle, number + 1)):
        position += len(raw)
        number += 1
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 byte-order mark is not part of the first instance
        if raw.strip():
            yield number, raw.rstrip(b"\r\n")


def _readline(handle, number: int) -> bytes:
    try:
        return handle.readline()
    except Exception as err:  # noqa: BLE001 - re-raised with the line it stopped at
        err.unread = number
        raise


def _records(handle, part: FileRange) -> Iterator[tuple[int, bytes]]:
    position, number = part.start, part.first
    while part.end is None or position < part.end:
        try:
            record = _read_record(handle)
        except Exception as err:  # noqa: BLE001 - re-raised with the record it stopped at
            err.unread = number
            raise
        if record is None:
            return
        yield number, record
        position += 16 + len(record)
        number += 1


def _read_record(handle) -> bytes | None:
    """The next TFRecord's payload (None at the end); ValueError naming what is wrong (never the bytes)."""
    header = handle.read(12)
    if not header:
        return None
    if len(header) < 12:
        raise ValueError("the file ends inside a record's length header")
    length, mask = struct.unpack("<QI", header)
    if _TFRecordUtil._masked_crc32c(header[:8]) != mask:
        raise ValueError("corrupt record length (checksum mismatch)")
    payload = handle.read(length + 4)
    if len(payload) < length + 4:
        raise ValueError(f"the file ends inside a record ({len(payload)} of {length + 4} bytes)")
    if _TFRecordUtil._masked_crc32c(payload[:length]) != struct.unpack("<I", payload[length:])[0]:
        raise ValueError("corrupt record data (checksum mismatch)")
    return payload[:length]


def _unread_message(part: FileRange, number: int, err: Exception, data_format: str) -> str:
    unit = "line" if data_format == TEXT else "record"
    if part.stop is None:
        what = f"{unit} {number} to the end of the file"
    elif part.stop - 1 > number:
        what = f"{unit}s {number} to {part.stop - 1}"
    else:
        what = f"{unit} {number}"
    cause = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
    return f"{part.path}: {what} could not be read: {cause[:300]}"
