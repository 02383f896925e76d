"""Data sets by name (``submission.data.named_data``) and the generators the project owns."""
