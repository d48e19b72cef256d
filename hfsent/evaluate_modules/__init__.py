"""`evaluate` modules shipped with hfsent, so metrics load offline (``evaluate.load(path)``)."""
