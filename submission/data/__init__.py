"""Data sets by name (``submission.data.named_data``): one module per family, the registry they share, and the
generators the project owns."""
