"""The package version (one place; ``prunex.__version__`` and ``prunex --version`` read it)."""

__version__ = "0.8.0"
