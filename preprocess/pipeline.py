"""One preprocessing run: an image folder (local or gs://) -> train/val TFRecord shards + manifest.json.

Owns the run as a whole (INTERFACE.md section 1): the layout (one dataset, or the unpaired `trainA/ trainB/
[testA/ testB/]` domains written to `A/` and `B/`), the deterministic train/val split, shard counts, the worker
pool, staging and the atomic swap into the output dir (manifest written last), and the summary. What happens to a
single file (decode, orient, convert, crop/resize, encode) belongs to `preprocess.images`.

Parallelism: workers decode with PIL *and* run the TF resize + PNG encode, then serialize the tf.train.Example; the
parent only writes bytes to the shards. Workers come from a `forkserver` whose process has imported this module
(TensorFlow included) but never run a TF op, so each worker is a cheap fork that starts TF's runtime fresh — safe
even when the calling process has already used TensorFlow (forking a process with a live TF runtime is not).
As with any multiprocessing, a script that calls `run` with workers > 1 needs an `if __name__ == "__main__":` guard.
"""
from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import random
import sys
import uuid

from artifacts.console import import_tensorflow

tf = import_tensorflow(list_devices=False)  # first, and quietly: this also runs in the workers' fork server

from artifacts import dataset as layout  # noqa: E402
from artifacts import storage  # noqa: E402
from artifacts.captions import MANIFEST_KEY as CAPTIONS_KEY  # noqa: E402
from artifacts.labels import MAX_CLASSES, is_pair_layout  # noqa: E402
from preprocess import captions as captioning  # noqa: E402
from preprocess import images, label_files, records  # noqa: E402
from preprocess.paths import PreprocessError, check_input_dir, check_output_dir  # noqa: E402,F401 - re-exported

IMAGES_PER_SHARD = 2000
MIN_IMAGES_PER_WORKER = 500  # starting workers costs ~5 s (a TF import) that fewer images do not win back


@dataclasses.dataclass(frozen=True)
class Options:
    image_size: int = 64
    center_crop: bool = False
    val_fraction: float = 0.1
    shards: int | None = None  # per split; None: one per IMAGES_PER_SHARD images, at least 1
    workers: int | None = None  # None: one per CPU, fewer for small inputs
    seed: int = 0
    class_labels: bool = False  # label each image by its first-level sub-folder (sorted names = class ids)
    captions: bool = False  # store a caption per image (also when the folder has a captions file): text -> image
    auto_labels: int = 0  # > 0: label maps by K-colour quantisation of the images (SPADE, INTERFACE.md section 11)

    def __post_init__(self):
        if self.image_size < 1:
            raise ValueError(f"image size must be a positive number of pixels, got {self.image_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        if self.shards is not None and self.shards < 1:
            raise ValueError(f"shards must be at least 1, got {self.shards}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if not 0 <= self.auto_labels <= MAX_CLASSES:
            raise ValueError(f"auto labels must be 0 (off) or 1 to {MAX_CLASSES} colours, got {self.auto_labels}")


@dataclasses.dataclass
class Dataset:
    """One output dataset: the whole input, or one domain of an unpaired input (written to `subdir`)."""
    subdir: str  # "" or "A" / "B"
    label: str  # where its images come from, for messages
    splits: dict[str, list[str]]  # split -> input-relative paths, in processing (seeded shuffle) order
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: {split: 0 for split in layout.SPLITS})
    skipped: list[dict] = dataclasses.field(default_factory=list)
    classes: list[str] | None = None  # class names, when the images are labelled by sub-folder
    captions: dict[str, str] | None = None  # image -> caption, for text -> image
    label_files: dict[str, str] | None = None  # image rel -> label map rel (SPADE pairs); {} for auto labels
    labeler: label_files.Labeler | None = None  # how label maps are made, when the dataset has them
    label_map_classes: list[dict] | None = None  # [{"name", "color"}] of the label maps
    unmatched: int = 0  # files skipped while planning (an image or label map without its partner)

    def label_of(self, rel: str) -> int | None:
        return None if self.classes is None else self.classes.index(rel.split("/", 1)[0])

    def caption_of(self, rel: str) -> str | None:
        return None if self.captions is None else self.captions[rel]

    def label_path(self, root: str, rel: str) -> str | None:
        """The label map file of image `rel` (None: none, or auto labels)."""
        partner = (self.label_files or {}).get(rel)
        return os.path.join(root, partner) if partner else None

    @property
    def manifest_path(self) -> str:
        """Relative to the output dir."""
        return layout.relative_manifest_path(self.subdir)

    @property
    def total(self) -> int:
        return sum(len(paths) for paths in self.splits.values()) + self.unmatched

    @property
    def usable(self) -> int:
        return sum(self.counts.values())


@dataclasses.dataclass
class Summary:
    output_dir: str
    datasets: list[Dataset]

    def line(self) -> str:
        def counts(items):
            total = sum(d.total for d in items)
            train = sum(d.counts["train"] for d in items)
            val = sum(d.counts["val"] for d in items)
            return f"{total} images: {train} train, {val} val, {sum(len(d.skipped) for d in items)} skipped"

        text = f"{counts(self.datasets)} → {self.output_dir}"
        if len(self.datasets) > 1:
            text += " (" + "; ".join(f"{d.subdir}: {counts([d])}" for d in self.datasets) + ")"
        return text


# ---------------------------------------------------------------- planning


def split_paths(paths: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic (for a seed) shuffled train/val split; at least one of each when there are 2+ images."""
    order = sorted(paths)
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return order[n_val:], order[:n_val]


def plan_datasets(root: str, options: Options) -> list[Dataset]:
    """The datasets of a local input dir: unpaired when it holds trainA/ and trainB/, otherwise one."""
    present = {name for name in ("trainA", "trainB") if storage.isdir(os.path.join(root, name))}
    if (is_pair_layout(root) and not options.class_labels) or options.auto_labels:
        return [plan_label_maps(root, options)]
    if not present:
        found = images.discover_images(root)
        captions = captioning.image_captions(root, found) if captioned(root, options) else None
        train, val = (split_paths(found, options.val_fraction, options.seed) if captions is None else
                      captioning.caption_disjoint_split(captions, options.val_fraction, options.seed))
        return [Dataset("", "the input dir", {"train": train, "val": val},
                        classes=class_folders(found) if options.class_labels else None, captions=captions)]
    if len(present) == 1:
        (found,) = present
        raise PreprocessError(f"unpaired input needs both trainA/ and trainB/; found only {found}/")
    return [_plan_domain(root, domain, options) for domain in layout.DOMAINS]


def captioned(root: str, options: Options) -> bool:
    """Whether images get captions: asked for (`--captions`, text -> image), or the folder has a captions file."""
    return options.captions or captioning.caption_files_present(root) != []


def plan_label_maps(root: str, options: Options) -> Dataset:
    """One dataset of images with label maps: `images/` + `labels/` pairs, or any image folder with auto labels."""
    if is_pair_layout(root):
        if options.auto_labels:
            raise PreprocessError("--auto-labels makes label maps for a plain image folder, but the input holds "
                                  "images/ and labels/ (its own label maps): leave --auto-labels out")
        found, pairs, skipped = label_files.pair_files(root)
        try:
            classes, labeler = label_files.pair_classes(root, list(pairs.values()))
        except ValueError as exc:
            raise PreprocessError(str(exc)) from None
    else:
        found, pairs, skipped = images.discover_images(root), {}, []
        classes, labeler = label_files.auto_classes(root, found, options.auto_labels, options.seed)
    train, val = split_paths(found, options.val_fraction, options.seed)
    return Dataset("", "the input dir", {"train": train, "val": val}, skipped=skipped, label_files=pairs,
                   labeler=labeler, label_map_classes=classes, unmatched=len(skipped))


def class_folders(found: list[str]) -> list[str]:
    """The sorted first-level sub-folders of the images `found` (their classes); refused when an image lies
    directly in the input dir or there are fewer than two."""
    loose = [rel for rel in found if "/" not in rel]
    if loose:
        raise PreprocessError(f"class labels come from sub-folders (one per class), but {len(loose)} image(s) lie "
                              f"directly in the input dir (e.g. {loose[0]}): move them into their class's folder")
    classes = sorted({rel.split("/", 1)[0] for rel in found})
    if len(classes) < 2:
        raise PreprocessError(f"class labels need at least two class sub-folders, found {classes or 'none'}")
    return classes


def _plan_domain(root: str, domain: str, options: Options) -> Dataset:
    def under(folder):
        return [f"{folder}/{rel}" for rel in images.discover_images(os.path.join(root, folder))]

    train_dir, test_dir = f"train{domain}", f"test{domain}"
    if storage.isdir(os.path.join(root, test_dir)):
        train, _ = split_paths(under(train_dir), 0.0, options.seed)
        val, _ = split_paths(under(test_dir), 0.0, options.seed)
        return Dataset(domain, f"{train_dir}/ and {test_dir}/", {"train": train, "val": val})
    train, val = split_paths(under(train_dir), options.val_fraction, options.seed)
    return Dataset(domain, f"{train_dir}/", {"train": train, "val": val})


def shard_count(n_images: int, options: Options) -> int:
    return options.shards or max(1, math.ceil(n_images / IMAGES_PER_SHARD))


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_count(n_images: int, options: Options) -> int:
    if options.workers:
        return max(1, min(options.workers, n_images))
    return max(1, min(available_cpus(), n_images // MIN_IMAGES_PER_WORKER))


# ---------------------------------------------------------------- per-image work (in workers or in-process)


def encode_record(encoder: images.StoredImageEncoder, path: str, rel: str, label: int | None = None,
                  caption: str | None = None, label_path: str | None = None,
                  labeler: label_files.Labeler | None = None) -> tuple[bytes | None, str | None]:
    """One file (and its label map, with a `labeler`) -> (serialized tf.train.Example, None) or (None, skip
    reason). Never raises for a bad file."""
    try:
        rgb = images.load_rgb(path)
        if labeler is None:
            png, height, width = encoder(rgb)
            return records.make_example(png, height, width, rel, label, caption), None
        from preprocess.label_maps import pair_encoder_for

        pair = pair_encoder_for(encoder.image_size, encoder.center_crop)
        png, label_map, height, width = pair(rgb, labeler.ids_for(rgb, label_path))
        return records.make_example(png, height, width, rel, label, caption, label_map), None
    except images.UnusableImage as exc:
        return None, str(exc)
    except Exception as exc:  # one bad file must never end the run
        return None, f"unexpected error: {type(exc).__name__}: {exc}"


_worker_settings: tuple[int, bool] | None = None  # (image_size, center_crop) of this worker process


def _init_worker(image_size: int, center_crop: bool, threads: int) -> None:
    """Runs once in each fresh worker; must not raise (a pool re-creates workers whose initializer fails)."""
    global _worker_settings
    _worker_settings = (image_size, center_crop)
    try:  # workers share the CPUs (small TF thread pools) and never need a GPU (nor hold its memory)
        tf.config.set_visible_devices([], "GPU")
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TF's runtime already started in this process: keep its settings
        pass


def _encode_in_worker(task: tuple) -> tuple[bytes | None, str | None]:
    return encode_record(images.encoder_for(*_worker_settings), *task)


def encoded_records(tasks: list[tuple], options: Options, workers: int):
    """(example, reason) for each (path, rel, label, caption, label path, labeler) task, in task order."""
    if workers == 1:
        encoder = images.encoder_for(options.image_size, options.center_crop)
        yield from (encode_record(encoder, *task) for task in tasks)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    init_args = (options.image_size, options.center_crop, max(1, available_cpus() // workers))
    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    with context.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap(_encode_in_worker, tasks, chunksize=chunk)


# ---------------------------------------------------------------- writing


class ShardSet:
    """The N shard files of one split; records are dealt round-robin."""

    def __init__(self, directory: str, split: str, count: int):
        os.makedirs(directory, exist_ok=True)
        self._writers = [tf.io.TFRecordWriter(os.path.join(directory, layout.shard_name(split, i, count)))
                         for i in range(count)]
        self.written = 0

    def write(self, serialized: bytes) -> None:
        self._writers[self.written % len(self._writers)].write(serialized)
        self.written += 1

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


def write_datasets(root: str, datasets: list[Dataset], staging: str, options: Options, progress: bool) -> None:
    """Process every planned file and write each dataset's shards below `staging`."""
    from tqdm import tqdm

    tasks, targets = [], []
    shard_sets = {}
    for dataset in datasets:
        for split, paths in dataset.splits.items():
            shard_sets[dataset.subdir, split] = ShardSet(os.path.join(staging, dataset.subdir), split,
                                                         shard_count(len(paths), options))
            tasks += [(os.path.join(root, rel), rel, dataset.label_of(rel), dataset.caption_of(rel),
                       dataset.label_path(root, rel), dataset.labeler) for rel in paths]
            targets += [(dataset, split)] * len(paths)
    try:
        results = encoded_records(tasks, options, worker_count(len(tasks), options))
        with tqdm(total=len(tasks), unit="img", desc="preprocess", disable=not progress) as bar:
            for (dataset, split), (_, rel, *_), (example, reason) in zip(targets, tasks, results):
                if example is None:
                    dataset.skipped.append({"path": rel, "reason": reason})
                else:
                    shard_sets[dataset.subdir, split].write(example)
                    dataset.counts[split] += 1
                bar.update()
    finally:
        for shard_set in shard_sets.values():
            shard_set.close()
    for dataset in datasets:
        dataset.skipped.sort(key=lambda item: item["path"])


def manifest_for(dataset: Dataset, source: str, options: Options) -> dict:
    extra = {} if dataset.classes is None else {"classes": [{"name": name} for name in dataset.classes]}
    if dataset.captions is not None:
        extra[CAPTIONS_KEY] = captioning.manifest_entry(dataset.captions, dataset.splits)
    if dataset.label_map_classes is not None:
        extra = {"classes": dataset.label_map_classes, **({"auto_labels": options.auto_labels}
                                                           if options.auto_labels else {})}
    return layout.new_manifest(image_size=options.image_size, load_size=records.load_size_for(options.image_size),
                               center_crop=options.center_crop, counts=dict(dataset.counts), source=source,
                               skipped=dataset.skipped, **extra)


# ---------------------------------------------------------------- input and output dirs


def staging_dir_for(output_dir: str) -> str:
    """Local staging: a hidden sibling of the output (same file system, so the final swap is a rename)."""
    if storage.is_gcs(output_dir):
        return storage.local_staging_dir("genart-output-")
    final = os.path.abspath(output_dir)
    parent, name = os.path.split(final)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{name}.staging-{uuid.uuid4().hex[:8]}")
    os.makedirs(staging)
    return staging


def publish(staging: str, output_dir: str, manifests: dict[str, dict]) -> None:
    """Swap the staged shards into `output_dir`, old shards gone, each manifest.json written last."""
    for rel, manifest in manifests.items():
        storage.write_json(os.path.join(staging, rel), manifest)
    storage.publish(staging, output_dir if storage.is_gcs(output_dir) else os.path.abspath(output_dir),
                    markers=list(manifests))


# ---------------------------------------------------------------- the run


def run(input_dir: str, output_dir: str, options: Options = Options(), progress: bool | None = None) -> Summary:
    """Preprocess `input_dir` into `output_dir`; raises PreprocessError when nothing usable can be written."""
    check_input_dir(input_dir)
    check_output_dir(output_dir)
    source = input_dir.rstrip("/") if storage.is_gcs(input_dir) else os.path.abspath(input_dir)
    wanted = images.discover_images(input_dir) + captioning.caption_files_present(input_dir)
    with storage.local_copy(input_dir, "genart-input-", wanted) as root:
        datasets = plan_datasets(root, options)
        staging = staging_dir_for(output_dir)
        try:
            write_datasets(root, datasets, staging, options, sys.stderr.isatty() if progress is None else progress)
            for dataset in datasets:
                if not dataset.usable:
                    raise PreprocessError(_nothing_usable(dataset, input_dir))
            publish(staging, output_dir, {d.manifest_path: manifest_for(d, source, options) for d in datasets})
        finally:
            storage.rmtree(staging)
    return Summary(output_dir, datasets)


def _nothing_usable(dataset: Dataset, input_dir: str) -> str:
    where = f"{input_dir}" + (f" ({dataset.label})" if dataset.subdir else "")
    if not dataset.total:
        return f"no image files ({' '.join(images.IMAGE_EXTENSIONS)}) found in {where}"
    first = dataset.skipped[0]
    return (f"no usable image in {where}: all {dataset.total} image files were skipped "
            f"(e.g. {first['path']}: {first['reason']})")
