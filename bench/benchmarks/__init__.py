"""The benchmark commands (``medbench bench-*``): ``attention`` (each attention module's cost
against token count, beside third-party ``attention_refs``), ``readers`` (the dataset loader
against the trainer's appetite), ``trainer`` (our trainer against a minimal PyTorch loop)
and ``site`` (``medbench site`` on a large results tree).
"""
