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
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.data.readers import ImageReadError, read_image

log = logging.getLogger(__name__)

MAX_AUTO_WORKERS = 8
MIN_PARALLEL_IMAGES = 512  # below this, starting the pool costs more than it saves
CHUNK_IMAGES = 128  # images per task: few enough tasks to pickle cheaply, enough to balance


def load_image(path: Path, size: int) -> np.ndarray:
    """Read an image, pad it to a square (anatomy keeps its aspect) and resize to ``size``."""
    pixels = read_image(path)
    h, w = pixels.shape
    if h != w:
        side = max(h, w)
        square = np.zeros((side, side), dtype=np.float32)
        square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = pixels
        pixels = square
    if pixels.shape[0] != size:  # Pillow's bilinear filter widens with the scale: antialiased
        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))
    return pixels


def read_chunk(paths: list[Path], size: int) -> tuple[np.ndarray, dict[int, str]]:
    """Images of ``paths`` as (n, size, size) float32; a rejected file leaves zeros and its problem,
    keyed by its position in ``paths``."""
    pixels = np.zeros((len(paths), size, size), dtype=np.float32)
    problems: dict[int, str] = {}
    for i, path in enumerate(paths):
        try:
            pixels[i] = load_image(path, size)
        except ImageReadError as exc:
            problems[i] = exc.problem
    return pixels, problems


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


def read_images(paths: list[Path], size: int, workers: int = 0, *, fail_fast: bool = False,
                desc: str = "loading images", progress: bool = True) -> tuple[np.ndarray, dict[int, str]]:
    """Every image of ``paths`` as one (n, size, size) float32 array, and ``{index: problem}`` for
    the files the reader rejected (their rows are zeros).

    ``workers`` as in :func:`resolve_workers`. With ``fail_fast`` the first rejected file (in
    ``paths`` order) raises its ``ImageReadError`` and the remaining work is cancelled.
    """
    count = resolve_workers(workers, len(paths))
    chunks = [paths[i:i + CHUNK_IMAGES] for i in range(0, len(paths), CHUNK_IMAGES)]
    pixels = np.zeros((len(paths), size, size), dtype=np.float32)
    problems: dict[int, str] = {}
    log.debug("%s: %d images in %d process(es)", desc, len(paths), count)
    with tqdm(total=len(paths), desc=desc, unit="img", disable=None if progress else True) as bar:
        for c, (block, chunk_problems) in enumerate(_chunk_results(chunks, size, count)):
            start = c * CHUNK_IMAGES
            pixels[start:start + len(block)] = block
            for i, problem in sorted(chunk_problems.items()):
                if fail_fast:
                    raise ImageReadError(paths[start + i], problem)
                problems[start + i] = problem
            bar.update(len(block))
    return pixels, problems


def _chunk_results(chunks: list[list[Path]], size: int, workers: int
                   ) -> Iterator[tuple[np.ndarray, dict[int, str]]]:
    """``read_chunk`` of every chunk, in order. With workers, the pool takes chunks from the front
    while this process reads from the back until they meet: the workers' start-up is not idle time."""
    if workers <= 1:
        yield from (read_chunk(chunk, size) for chunk in chunks)
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: list[Future | None] = [pool.submit(read_chunk, chunk, size) for chunk in chunks]
        own: dict[int, tuple[np.ndarray, dict[int, str]]] = {}
        for c in reversed(range(len(chunks))):
            if not futures[c].cancel():  # a worker has it, and so every chunk before it
                break
            futures[c] = None
            own[c] = read_chunk(chunks[c], size)
        for c, future in enumerate(futures):
            yield own.pop(c) if future is None else future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
