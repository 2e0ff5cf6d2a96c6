"""CTTime's version (also in pyproject.toml)."""

__version__ = "0.1.0"
VERSION_TEXT = f"cttime {__version__} (`cttime info`: model, parameter file, demo reference, engines)"  # --version
