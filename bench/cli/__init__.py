"""The ``medbench`` command: ``main`` (argparse: parse and dispatch), ``args`` (the options
the commands share), ``benchmarks`` (the ``bench-*`` commands) and ``runner`` (``medbench
run``: the stages over every model and seed). The top layer: it may import every other
package of ``bench``; none imports it.
"""
