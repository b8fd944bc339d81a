#!/usr/bin/env python3
"""Download the wheels a GPU machine without network lacks, to carry there with the tree.

    .venv/bin/python scripts/gpu_wheels.py --python 3.12 --have gpu-freeze.txt --out wheels/

The engine's dependencies are read from this venv's installed metadata (the pinned versions
of requirements.txt and everything they pull in), minus PyTorch and its CUDA packages, which
the GPU machine brings, and minus every package ``--have`` (``pip freeze`` from that machine)
lists, except those in ``PINNED``, always carried at this venv's version. Each is fetched as a wheel for that machine's Python and Linux; a package published
only as source (fvcore, iopath) is built here into a pure-Python wheel. There:

    python -m pip install --no-index --find-links wheels/ wheels/*.whl
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# what the train, profile and attention stages import (captum and onnx only for explain / export)
ROOTS = ("timm", "scikit-learn", "fvcore", "pydicom", "jsonschema", "tqdm", "numpy", "pillow")
OPTIONAL = {"explain": ("captum",), "export": ("onnx", "onnxscript", "onnxruntime")}
# carried even where the GPU machine has them: their versions define the models (timm) and the
# pixel baseline (scikit-learn), so the paper results are built by the code tested here
PINNED = ("timm", "scikit-learn")
# the GPU machine's own PyTorch stack, never replaced
EXCLUDE = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|setuptools|pip|wheel)$")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")
CARRY_LIMIT_MB = 60


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: tuple[str, ...]) -> dict[str, str]:
    """name -> installed version for ``roots`` and everything they require (extras left out)."""
    found: dict[str, str] = {}
    stack = list(roots)
    while stack:
        name = norm(stack.pop())
        if name in found or EXCLUDE.match(name):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another Python or platform (marker): not installed here
        found[name] = dist.version
        for req in dist.requires or ():
            if "extra ==" not in req:
                stack.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return found


def have(path: Path | None) -> set[str]:
    if path is None:
        return set()
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(==|@|$)", line.strip())
        if match:
            names.add(norm(match.group(1)))
    return names


def fetch(name: str, version: str, python: str, out: Path) -> str:
    """A wheel of name==version for ``python`` on Linux x86-64: downloaded, else built here."""
    spec = f"{name}=={version}"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    binary = [*pip, "download", spec, "--no-deps", "--only-binary=:all:", "--dest", str(out),
              "--python-version", python, "--implementation", "cp"]
    for platform in PLATFORMS:
        binary += ["--platform", platform]
    if subprocess.run(binary, capture_output=True, text=True).returncode == 0:
        return "downloaded"
    built = subprocess.run([*pip, "wheel", spec, "--no-deps", "--wheel-dir", str(out)], capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit(f"{spec}: no wheel for Python {python} and no build here:\n{built.stderr[-2000:]}")
    return "built (source only)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", required=True, help="the GPU machine's Python, e.g. 3.12")
    parser.add_argument("--have", type=Path, help="`pip freeze` of the GPU machine: these are not carried")
    parser.add_argument("--with", dest="extras", action="append", default=[], choices=sorted(OPTIONAL),
                        help="also the packages of the explain or export stage")
    parser.add_argument("--out", type=Path, default=Path("wheels"))
    args = parser.parse_args(argv)
    roots = ROOTS + tuple(p for extra in args.extras for p in OPTIONAL[extra])
    present = have(args.have)
    wanted = {n: v for n, v in sorted(closure(roots).items()) if n not in present or n in PINNED}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, version in wanted.items():
        print(f"{name}=={version}: {fetch(name, version, args.python, args.out)}")
    total_mb = sum(p.stat().st_size for p in args.out.glob("*.whl")) / 2**20
    print(f"{len(wanted)} packages, {total_mb:.1f} MiB in {args.out}")
    if total_mb > CARRY_LIMIT_MB:
        print(f"over the {CARRY_LIMIT_MB} MiB a device call can carry: pass --have, or leave out a stage",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
