"""The package version, in a module of its own so that any layer can read it without importing
the package root (which would pull in the chain and the matcher)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
