"""MedViT-Bench: which vision architecture for a medical imaging task, and at what cost.

The package root stays import-light: the site generator (``bench.site``) must import
without torch, so nothing here pulls in heavy dependencies.
"""

__version__ = "0.1.0"
