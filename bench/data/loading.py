"""Reading many images into one array: read, pad to a square, resize; in worker processes when it pays.

``load_dataset`` and the benchmark ``medbench bench-readers`` both go through
:func:`read_images`, so the throughput the benchmark prints is the loader's. Workers are
spawned (the parent may hold torch threads, which ``fork`` would copy mid-state) and import
only numpy, PIL and the readers, so a pool starts in well under a second. A file the reader
rejects comes back as its problem, never as an exception from a worker, so one bad file
costs neither the others nor the pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.data.readers import MAX_PIXELS, ImageReadError, read_image, read_with_metadata

log = logging.getLogger(__name__)

FrameOption = int | str  # "middle", "all" or a frame index, as data.frames

MAX_AUTO_WORKERS = 8
MIN_PARALLEL_IMAGES = 2048  # below this, starting the pool costs more than it saves (bench-readers: 600 DICOMs
# read at 914 images/s with 2 workers, 1,649 in one process; 2,000 about even; 4,000 a fifth faster)
CHUNK_IMAGES = 128  # images per task: few enough tasks to pickle cheaply, enough to balance


def _square_resized(pixels: np.ndarray, size: int) -> np.ndarray:
    """Pad to a square (anatomy keeps its aspect), then resize to ``size``."""
    h, w = pixels.shape
    if h != w:
        side = max(h, w)
        square = np.zeros((side, side), dtype=np.float32)
        square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = pixels
        pixels = square
    if pixels.shape[0] != size:  # Pillow's bilinear filter widens with the scale: antialiased
        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))
    return pixels


def load_image(path: Path, size: int, frame: int | str = "middle", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read one frame of an image (the middle one of a multi-frame file by default), pad it to a
    square and resize it to ``size``. A file declaring more than ``max_pixels`` is refused unread."""
    if frame == "all":
        raise ValueError("load_image returns one frame; use load_frames for all of them")
    return _square_resized(read_image(path, frame=frame, max_pixels=max_pixels), size)


def load_frames(path: Path, size: int, frame: FrameOption = "middle", max_pixels: int = MAX_PIXELS
                ) -> tuple[np.ndarray, list[int | None]]:
    """The frames ``frame`` picks ("middle", "all" or an index) as (F, size, size), and the index
    of each; None for "middle", which names no index because reading it again gives the same."""
    if frame != "all":
        return load_image(path, size, frame, max_pixels)[None], [None if frame == "middle" else int(frame)]
    stack, metadata = read_with_metadata(path, frame="all", max_pixels=max_pixels)
    return np.stack([_square_resized(plane, size) for plane in stack]), list(metadata["frame"])


def read_chunk(paths: list[Path], size: int, frame: FrameOption = "middle", max_pixels: int = MAX_PIXELS
               ) -> tuple[np.ndarray, list[int], list[int | None], dict[int, str]]:
    """The frames of ``paths`` stacked as (rows, size, size) float32, the position in ``paths``
    and the frame index of each row, and the problem of each rejected file, keyed by position."""
    planes: list[np.ndarray] = []
    owners: list[int] = []
    frames: list[int | None] = []
    problems: dict[int, str] = {}
    for i, path in enumerate(paths):
        try:
            pixels, indices = load_frames(path, size, frame, max_pixels)
        except ImageReadError as exc:
            problems[i] = exc.problem
            continue
        planes.append(pixels)
        owners += [i] * len(indices)
        frames += indices
    pixels = np.concatenate(planes) if planes else np.zeros((0, size, size), dtype=np.float32)
    return pixels, owners, frames, problems


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, as a container or ``taskset`` sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int, n_images: int) -> int:
    """``workers`` processes (0: one per available core, at most ``MAX_AUTO_WORKERS``); 1 for small sets."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0: one per core), got {workers}")
    count = workers or min(available_cores(), MAX_AUTO_WORKERS)
    return 1 if n_images < MIN_PARALLEL_IMAGES else min(count, -(-n_images // CHUNK_IMAGES))


class LoadedImages(NamedTuple):
    """What :func:`read_images` read: one row per frame, in the order of the paths."""

    pixels: np.ndarray  # (rows, size, size) float32 in [0, 1]
    owners: list[int]  # per row, the position of its file in the paths
    frames: list[int | None]  # per row, the frame index; None for a file's middle (or only) frame
    problems: dict[int, str]  # the reader's reason for each rejected file, by position


def read_images(paths: list[Path], size: int, workers: int = 0, *, frame: FrameOption = "middle",
                max_pixels: int = MAX_PIXELS, fail_fast: bool = False, desc: str = "loading images",
                progress: bool = True) -> LoadedImages:
    """The frames ``frame`` picks (see :func:`load_frames`) of every file of ``paths``; a file the
    reader rejects (one declaring more than ``max_pixels`` among them) adds no row and its problem.

    ``workers`` as in :func:`resolve_workers`. With ``fail_fast`` the first rejected file (in
    ``paths`` order) raises its ``ImageReadError`` and the remaining work is cancelled.
    """
    count = resolve_workers(workers, len(paths))
    chunks = [paths[i:i + CHUNK_IMAGES] for i in range(0, len(paths), CHUNK_IMAGES)]
    # at most one row a file unless every frame is asked for: filled in place, no second copy
    rows = 0
    pixels = np.empty((len(paths) if frame != "all" else 0, size, size), dtype=np.float32)
    blocks: list[np.ndarray] = []
    owners: list[int] = []
    frames: list[int | None] = []
    problems: dict[int, str] = {}
    log.debug("%s: %d files in %d process(es)", desc, len(paths), count)
    with tqdm(total=len(paths), desc=desc, unit="img", disable=None if progress else True) as bar:
        for c, (block, chunk_owners, chunk_frames, chunk_problems) in enumerate(
                _chunk_results(chunks, size, (frame, max_pixels), count)):
            start = c * CHUNK_IMAGES
            for i, problem in sorted(chunk_problems.items()):
                if fail_fast:
                    raise ImageReadError(paths[start + i], problem)
                problems[start + i] = problem
            if frame == "all":
                blocks.append(block)
            else:
                pixels[rows:rows + len(block)] = block
            rows += len(block)
            owners += [start + i for i in chunk_owners]
            frames += chunk_frames
            bar.update(len(chunks[c]))
    if frame == "all":
        pixels = np.concatenate(blocks) if blocks else pixels
    return LoadedImages(pixels[:rows], owners, frames, problems)


def _chunk_results(chunks: list[list[Path]], size: int, options: tuple[FrameOption, int], workers: int
                   ) -> Iterator[tuple]:
    """``read_chunk`` of every chunk, in order. With workers, the pool takes chunks from the front
    while this process reads from the back until they meet: the workers' start-up is not idle time.
    A pool that breaks (a worker killed, or a script that spawned processes cannot re-import) leaves
    its chunks to this process."""
    if workers <= 1:
        yield from (read_chunk(chunk, size, *options) for chunk in chunks)
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: list[Future | None] = [pool.submit(read_chunk, chunk, size, *options) for chunk in chunks]
        own: dict[int, tuple] = {}
        for c in reversed(range(len(chunks))):
            if not futures[c].cancel():  # a worker has it, and so every chunk before it
                break
            futures[c] = None
            own[c] = read_chunk(chunks[c], size, *options)
        for c, future in enumerate(futures):
            if future is None:
                yield own.pop(c)
                continue
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                log.warning("image-reading workers failed (%s); reading in this process", exc)
                result = read_chunk(chunks[c], size, *options)
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
