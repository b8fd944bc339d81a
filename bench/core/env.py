"""What ran where: machine identity, hardware, library versions, git state."""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
MACHINE_ID_ENV = "MEDBENCH_MACHINE_ID"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Instruction-set extensions that decide which matmul kernels a CPU runs fast (oneDNN picks them).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_isa() -> list[str]:
    """The ISA_FLAGS this CPU reports in /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in ISA_FLAGS if f in flags]


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bfloat16 matmul instructions (AVX512-BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_isa()))


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def gpu_info() -> dict[str, Any] | None:
    """The first CUDA device, or None on a CPU-only machine."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    driver = None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        driver = out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return {
        "name": props.name,
        "memory_gb": round(props.total_memory / 1024**3, 1),
        "driver": driver,
        "count": torch.cuda.device_count(),
    }


def _slug(text: str) -> str:
    text = re.sub(r"\((R|TM)\)|CPU|Processor|@.*$|\d+-Core", "", text, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_id(gpu: dict[str, Any] | None = None) -> str:
    """A stable id for this kind of machine: ``$MEDBENCH_MACHINE_ID`` or derived from the hardware.

    Machines of one kind share an id, so their results land in one column.
    """
    override = os.environ.get(MACHINE_ID_ENV)
    if override:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", override):
            raise ValueError(f"${MACHINE_ID_ENV}={override!r}: use letters, digits, '.', '_' and '-' only")
        return override
    if gpu is not None:
        return f"gpu-{_slug(gpu['name'])}"
    return f"cpu-{_slug(cpu_model())}-{cpu_cores()}c"


@functools.lru_cache(maxsize=1)
def machine_info() -> dict[str, Any]:
    import torch

    gpu = gpu_info()
    return {
        "id": machine_id(gpu),
        "cpu": cpu_model(),
        "cores": cpu_cores(),
        "ram_gb": ram_gb(),
        "threads": torch.get_num_threads(),
        "gpu": gpu,
    }


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None


def environment() -> dict[str, Any]:
    import numpy
    import torch

    from bench.core import compat

    compat.ensure_torchvision()
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": str(cudnn) if cudnn else None,
        "numpy": numpy.__version__,
        "timm": _version("timm"),
        "torchvision": _version("torchvision"),
        "sklearn": _version("sklearn"),
    }


def git_state() -> tuple[str, bool]:
    """(sha, dirty) of the checkout, or ("unknown", False) outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "bench", "suites"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10,
        ).stdout
        return sha, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])
