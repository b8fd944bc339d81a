"""Energy of a timed piece of work: measured where a counter is readable, else estimated.

A CPU's package counter (RAPL, ``/sys/class/powercap/intel-rapl:*/energy_uj``; AMD exposes
its own under the same interface) is read where the kernel and hypervisor allow it. Most
virtual machines do not, and then the energy is an estimate with a stated formula:

    energy = CPU-seconds x watts per core + wall seconds x resident GB x watts per GB

(the Green Algorithms calculator's form at a power-usage effectiveness of 1, i.e. at the
machine). CPU-seconds are measured (``time.process_time``, every thread of the process), so
utilisation is in them; the wattages are assumptions, given as a (low, central, high) band.
An estimate is comparable only between models timed on one machine with one formula.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POWERCAP = Path("/sys/class/powercap")
ESTIMATE_LABEL = "estimate, no hardware counter"
MEASURED_LABEL = "measured"


@dataclass(frozen=True)
class EnergyModel:
    """The estimate's parameters; see the module docstring."""

    watts_per_core: tuple[float, float, float]  # low, central, high
    watts_per_gb: float

    def formula(self) -> str:
        return "CPU-seconds x watts_per_core + wall seconds x resident GB x watts_per_gb (at the machine, PUE 1)"

    def joules(self, cpu_seconds: float, wall_seconds: float, resident_gb: float) -> dict[str, float]:
        """The (low, central, high) estimate in joules."""
        memory = wall_seconds * resident_gb * self.watts_per_gb
        return {band: cpu_seconds * watts + memory
                for band, watts in zip(("low", "central", "high"), self.watts_per_core)}

    def as_dict(self) -> dict[str, Any]:
        return {"formula": self.formula(), "watts_per_core": list(self.watts_per_core),
                "watts_per_gb": self.watts_per_gb, "pue": 1.0}


def package_counters() -> list[Path]:
    """The readable package-level energy counters (one per socket), or none."""
    found = []
    for zone in sorted(POWERCAP.glob("*-rapl:[0-9]*")):
        counter = zone / "energy_uj"
        if ":" in zone.name.split("rapl", 1)[1][1:]:
            continue  # a sub-zone (core, dram) of a package already counted
        try:
            int(counter.read_text())
        except (OSError, ValueError):
            continue
        found.append(counter)
    return found


def _read_uj(counters: list[Path]) -> list[int]:
    return [int(c.read_text()) for c in counters]


class Meter:
    """Times a block: wall and CPU seconds, the largest resident set seen, and, where a package
    counter is readable, the joules it counted.

    >>> with Meter() as meter:
    ...     work()
    >>> meter.wall_s, meter.cpu_s, meter.resident_gb, meter.measured_j
    """

    def __init__(self, sample_every_s: float = 0.05) -> None:
        self.sample_every_s = sample_every_s
        self.counters = package_counters()
        self.wall_s = self.cpu_s = 0.0
        self.resident_gb = 0.0
        self.measured_j: float | None = None
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.sample_every_s):
            self.resident_gb = max(self.resident_gb, resident_gb())

    def __enter__(self) -> "Meter":
        self.resident_gb = resident_gb()
        self._energy0 = _read_uj(self.counters) if self.counters else None
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = time.process_time() - self._cpu0
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self.resident_gb = max(self.resident_gb, resident_gb())
        if self._energy0 is not None:
            # a counter wraps at max_energy_range_uj; one wrap within a timed block is corrected
            total = 0
            for counter, before, after in zip(self.counters, self._energy0, _read_uj(self.counters)):
                wrap = int((counter.parent / "max_energy_range_uj").read_text()) if after < before else 0
                total += after + wrap - before
            self.measured_j = total / 1e6


def resident_gb() -> float:
    """This process's resident set now, in GB (0 where /proc is absent)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def energy_record(meter: Meter, images: int, model: EnergyModel) -> dict[str, Any]:
    """Joules per image: the counter's where one was read, else the estimate's band."""
    if meter.measured_j is not None:
        return {"label": MEASURED_LABEL, "source": "RAPL package counter (the whole package, not this process alone)",
                "joules_per_image": float(f"{meter.measured_j / images:.4g}")}
    joules = model.joules(meter.cpu_s, meter.wall_s, meter.resident_gb)
    return {"label": ESTIMATE_LABEL, "joules_per_image": {band: float(f"{j / images:.4g}") for band, j in joules.items()}}
