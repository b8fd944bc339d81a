"""Shared primitives: suite configs, safe names and paths, registries, statistics and metrics,
the machine's identity, distributed helpers and library compatibility.

The bottom layer: it imports nothing else of ``bench``. Modules here import their heavy
dependencies themselves (torch in ``distributed``, scikit-learn in ``metrics``), so the
site can use ``config`` and ``paths`` without them.
"""
