"""Explanations: ``stage`` (the explain stage) and ``summary`` (the suite's comparison);
``attribution`` (captum's methods, one map per image) and ``taps`` (Grad-CAM's layer);
``faithfulness`` (every score beside every baseline), ``scores`` (the scores and bootstrap
statistics), ``baselines`` (model-free maps, the random point, Grad-CAM's ceiling), ``deletion``
(deletion and insertion with a non-cue fill), ``sanity`` (cascading and full randomisation);
``gallery``, ``images`` (the strips) and ``native_maps`` (each model's own attention maps);
``artifacts`` (which artifact files the results reference). Reads the checkpoints the train
stage wrote (``bench.stages.train``).
"""
