"""constraints.txt: the whole dependency tree pinned, agreeing with every requirements pin."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.split("#", 1)[0].strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_every_requirement_is_locked_at_its_pinned_version():
    locked = _pins(REPO / "constraints.txt")
    for name in ("requirements.txt", "requirements-site.txt"):
        for package, version in _pins(REPO / name).items():
            assert locked.get(package) == version, f"{name} pins {package}=={version}; constraints.txt has " \
                                                   f"{locked.get(package)} (run `make lock`)"


def test_the_lock_holds_the_transitive_tree_not_only_the_top_level():
    locked, direct = _pins(REPO / "constraints.txt"), _pins(REPO / "requirements.txt")
    assert {"scipy", "markupsafe", "huggingface-hub"} <= set(locked) - set(direct)
    assert "pip" not in locked and "setuptools" not in locked
