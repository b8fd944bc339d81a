"""Explanations: ``stage`` (the explain stage: galleries, faithfulness against lesion masks,
the sanity check), ``attribution`` (captum's methods and the scores), ``native_maps`` (each
model's own attention maps) and ``images`` (the gallery strips). Reads the checkpoints the
train stage wrote (``bench.stages.train``).
"""
