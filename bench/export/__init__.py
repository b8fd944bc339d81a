"""ONNX export for the site's in-browser demo: ``stage`` (the export stage: ONNX files,
parity with PyTorch measured by onnxruntime, sample images) and ``onnx_weights`` (int8 and
fp16 weight storage). Reads the checkpoints the train stage wrote (``bench.stages.train``).
"""
