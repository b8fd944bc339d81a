"""Names that become path components, and output paths that must stay under their roots.

Machine ids, suite names and model names are chosen by the user (``--machine-id``,
``--set name=...``, ``--models``) and end up as folder and file names. A name such as
``..`` or ``/etc`` would move a write out of ``data/``; these checks refuse it with a
one-line :class:`UnsafePathError` (a :class:`~bench.core.config.ConfigError`, which the CLI
prints without a traceback).
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.core.config import ConfigError

# timm:foo is a model name; ':' is mapped to '-' by safe_name, so the raw check lets it through
_ALLOWED_HINT = "use letters, digits, '.', '_', '-' (and ':' in model names)"
_MAX_COMPONENT = 200  # well under the 255 bytes most file systems allow, leaving room for suffixes


class UnsafePathError(ConfigError):
    """A name is not a safe path component, or an output path would leave its root."""


def _problem(name: object) -> str | None:
    """Why ``name`` is not a safe single path component; None when it is."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name in (".", ".."):
        return "it names a folder itself"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if re.match(r"^[A-Za-z]:", name):
        return "it looks like a drive-letter path"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    if name.startswith("."):
        return "it starts with '.' (hidden files hold locks and partial writes)"
    if name.startswith("-"):
        return "it starts with '-' (it would read as a command-line option)"
    if len(name) > _MAX_COMPONENT:
        return f"it is longer than {_MAX_COMPONENT} characters"
    return None


def check_name(name: str, what: str) -> str:
    """Return ``name`` when it is safe as one path component; else raise naming ``what``."""
    problem = _problem(name)
    if problem:
        raise UnsafePathError(f"{what} {name!r} is not a safe file name: {problem}; {_ALLOWED_HINT}")
    return name


def safe_name(name: str) -> str:
    """A name as a file-name component (``timm:foo`` → ``timm-foo``); refuses the names that
    would still climb or vanish after the mapping (``''``, ``'.'``, ``'..'``)."""
    mapped = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name))
    if mapped in ("", ".", ".."):
        raise UnsafePathError(f"{name!r} is not a safe file name: it maps to {mapped!r}; {_ALLOWED_HINT}")
    return mapped


def inside(root: Path, path: Path, what: str = "output") -> Path:
    """``path`` when it resolves to a place under ``root`` (symlinks followed); else raise.

    The last line of defence: whatever names went into ``path``, a write lands under its root.
    """
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != root_resolved and not resolved.is_relative_to(root_resolved):
        raise UnsafePathError(f"{what} {path} would be written outside its root {root}; refusing")
    return Path(path)
