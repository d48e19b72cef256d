"""The ``hfsent`` CLI's commands, one module each, each with ``main(argv) -> int``."""
