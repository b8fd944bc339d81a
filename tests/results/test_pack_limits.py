"""An archive member over its size limit is refused from its tar header, before its data is read:
a 1 GiB artifact (zeros, about 1 MB compressed) is refused with a peak RSS far below its size."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from bench.results.pack import MANIFEST, MAX_ARTIFACT_BYTES, MAX_MANIFEST_BYTES, pack_results, read_archive
from bench.results.store import MAX_RESULT_BYTES, ResultError

REPO = Path(__file__).resolve().parents[2]
GIB = 2**30
CHUNK = 2**20
RSS_LIMIT_MB = 200

# Reads the archive in a fresh interpreter; prints the error, then the peak RSS of its memory (VmHWM, KiB).
_READ = """
import sys
from bench.results.pack import read_archive
from bench.results.store import ResultError
try:
    read_archive(sys.argv[1])
    print("accepted")
except ResultError as exc:
    print(exc)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""
# Runs _READ as its child and prints its output, then the child's peak RSS (KiB) from getrusage. A
# process's ru_maxrss on Linux carries over the peak of the memory it replaced at exec, so the
# child of pytest would report pytest's own size: the reader is a grandchild of a small process.
_MEASURE = """
import resource, subprocess, sys
run = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], capture_output=True, text=True)
sys.stdout.write(run.stdout + run.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _gf2_times(matrix: list[int], vector: int) -> int:
    out, i = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def _crc32_zeros(crc: int, length: int) -> int:
    """zlib.crc32(bytes(length), crc) without touching ``length`` bytes: zero bytes only shift the
    (inverted) register, by the matrix power that zlib's crc32_combine builds by squaring."""
    crc ^= 0xFFFFFFFF
    odd = [0xEDB88320] + [1 << i for i in range(31)]  # one zero bit
    even = [_gf2_times(odd, v) for v in odd]  # two zero bits
    odd = [_gf2_times(even, v) for v in even]  # four
    while length:
        even = [_gf2_times(odd, v) for v in odd]
        if length & 1:
            crc = _gf2_times(even, crc)
        length >>= 1
        if not length:
            break
        odd = [_gf2_times(even, v) for v in even]
        if length & 1:
            crc = _gf2_times(odd, crc)
        length >>= 1
    return crc ^ 0xFFFFFFFF


def _zero_member_archive(path: Path, name: str, size: int) -> None:
    """A valid .tar.gz of a manifest and ``name``, ``size`` zero bytes (a multiple of 1 MiB). One MiB of
    zeros is deflated once and its full-flushed block repeated: 1 GiB costs about 1 MB and no CPU."""
    manifest = json.dumps({"format": "medbench-results-archive", "format_version": 1,
                           "files": [{"path": name, "bytes": size, "sha256": "0" * 64}]}).encode()
    head = io.BytesIO()
    info = tarfile.TarInfo(MANIFEST)
    info.size = len(manifest)
    head.write(info.tobuf(tarfile.USTAR_FORMAT) + manifest + bytes(-len(manifest) % tarfile.BLOCKSIZE))
    big = tarfile.TarInfo(name)
    big.size = size
    head.write(big.tobuf(tarfile.USTAR_FORMAT))
    prefix, tail = head.getvalue(), bytes(2 * tarfile.BLOCKSIZE)  # tail: the end-of-archive marker
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip header, mtime 0
        out.write(deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH))
        block = deflate.compress(bytes(CHUNK)) + deflate.flush(zlib.Z_FULL_FLUSH)  # refers to nothing before it
        for _ in range(size // CHUNK):
            out.write(block)
        out.write(deflate.compress(tail) + deflate.flush())
        crc = zlib.crc32(tail, _crc32_zeros(zlib.crc32(prefix), size))
        out.write(struct.pack("<II", crc, (len(prefix) + size + len(tail)) & 0xFFFFFFFF))


def test_the_cheap_archive_is_a_valid_tar_gz(tmp_path: Path) -> None:
    assert _crc32_zeros(zlib.crc32(b"abc"), 12345) == zlib.crc32(bytes(12345), zlib.crc32(b"abc"))
    path = tmp_path / "small.tar.gz"
    _zero_member_archive(path, "artifacts/zeros.bin", 3 * CHUNK)
    with tarfile.open(path, "r:gz") as tar:  # reads to the end: CRC and length checked by gzip
        members = {m.name: tar.extractfile(m).read() for m in tar}
    assert members["artifacts/zeros.bin"] == bytes(3 * CHUNK)
    assert json.loads(members[MANIFEST])["files"][0]["bytes"] == 3 * CHUNK


def test_a_1_gib_artifact_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.tar.gz"
    _zero_member_archive(path, "artifacts/explain/quick/huge.webp", GIB)
    assert path.stat().st_size < 4 * CHUNK
    run = subprocess.run([sys.executable, "-c", _MEASURE, _READ, str(path)], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
                         timeout=120)
    assert run.returncode == 0, run.stderr
    message, hwm_kib, rusage_kib = run.stdout.strip().splitlines()
    peak_mb, hwm_mb = int(rusage_kib) / 1024, int(hwm_kib) / 1024
    print(f"\n1 GiB artifact: refused with peak RSS {peak_mb:.0f} MB (getrusage; VmHWM {hwm_mb:.0f} MB): {message}")
    assert f"member 'artifacts/explain/quick/huge.webp' declares {GIB:,} bytes" in message
    assert f"over the {MAX_ARTIFACT_BYTES:,} allowed for an artifact" in message
    assert peak_mb < RSS_LIMIT_MB and hwm_mb < RSS_LIMIT_MB


@pytest.mark.parametrize("name, limit", [(MANIFEST, MAX_MANIFEST_BYTES),
                                         ("results/m/quick/train__x__seed0.json", MAX_RESULT_BYTES),
                                         ("artifacts/a.bin", MAX_ARTIFACT_BYTES)])
def test_each_kind_of_member_has_its_limit(tmp_path: Path, name: str, limit: int) -> None:
    path = tmp_path / "over.tar.gz"
    size = (limit // CHUNK + 1) * CHUNK
    _zero_member_archive(path, name, size)
    with pytest.raises(ResultError, match=f"declares {size:,} bytes, over the {limit:,} allowed") as info:
        read_archive(path)
    assert info.value.path == path


def test_pack_refuses_a_limit_that_unpack_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="over the .* bytes that unpacking accepts"):
        pack_results(tmp_path, tmp_path.parent / "x.tar.gz", max_artifact_bytes=MAX_ARTIFACT_BYTES + 1)
