"""The suite's stages: ``train`` (the trainer and its checkpoints), ``baselines`` and
``baseline_run`` (trivial classifiers on the same splits), ``compare`` (intervals and paired
tests across seeds), and ``profile_run``, ``profile`` and ``timing`` (latency, memory,
resolution sweep and roofline). Each writes its result files through ``bench.results``.
"""
