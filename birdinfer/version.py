"""The package version, in a module of its own so that any module can import it without
importing the package's public surface (which imports the run, which would import it back)."""

__version__ = "0.1.0"
