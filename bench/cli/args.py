"""Turning parsed command-line arguments into configs and paths, shared by every ``medbench`` command."""

from __future__ import annotations

import argparse
import logging
import tomllib
from pathlib import Path
from typing import Any

from bench.core.config import ConfigError, SuiteConfig, load_suite, suite_from_dict
from bench.core.paths import check_name

log = logging.getLogger("bench")


def _csv(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _names(text: str | None, what: str) -> list[str] | None:
    """A comma-separated list of names, each refused unless it is a safe file name."""
    return [check_name(n, what) for n in _csv(text)] if text else None


def _data_overrides(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Apply ``--data``, ``--data-kind`` and ``--on-bad-file`` to a suite's ``[data]`` values.

    ``--data PATH`` alone detects the kind from what PATH holds and logs why.
    """
    if getattr(args, "data", None):
        path = Path(args.data).expanduser().resolve()
        if args.data_kind:
            data["kind"] = args.data_kind
            log.info("data: %s read as kind %r (--data-kind)", path, args.data_kind)
        else:
            from bench.data.sources import detect_source

            found = detect_source(path)
            data["kind"] = found.kind
            path = found.root
            log.info("data: %s detected as kind %r: %s (--data-kind overrides)", path, found.kind, found.reason)
        data["root"] = str(path)
    elif getattr(args, "data_kind", None):
        data["kind"] = args.data_kind
    if getattr(args, "on_bad_file", None):
        data["on_bad_file"] = args.on_bad_file


def _suite(args: argparse.Namespace) -> SuiteConfig:
    """The named suite with every ``--set section.key=value`` and data override applied and
    re-validated; its name and models must be safe file names (they become folders)."""
    suite = _overridden_suite(args)
    check_name(suite.name, "suite name")
    for model in suite.models:
        check_name(model, "model name")
    return suite


def _overridden_suite(args: argparse.Namespace) -> SuiteConfig:
    suite = load_suite(args.suite)
    data_options = any(getattr(args, key, None) for key in ("data", "data_kind", "on_bad_file"))
    if not getattr(args, "set", None) and not data_options:
        return suite
    values: dict[str, Any] = suite.to_dict()
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare string
        *sections, leaf = key.split(".")
        target = values
        for sect in sections:
            target = target.setdefault(sect, {})
        target[leaf] = value
    _data_overrides(args, values.setdefault("data", {}))
    return suite_from_dict(values, where=f"{args.suite} with overrides")


def _paths(args: argparse.Namespace):  # noqa: ANN202
    from bench.results.records import RunPaths

    base = RunPaths()
    return RunPaths(
        results=Path(args.results_dir) if args.results_dir else base.results,
        checkpoints=Path(args.checkpoint_dir) if args.checkpoint_dir else base.checkpoints,
        artifacts=Path(args.artifacts_dir) if args.artifacts_dir else base.artifacts,
        locks=(Path(args.results_dir) / ".locks") if args.results_dir else base.locks,
    )
