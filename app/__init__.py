"""QMF Studio: quality-aware multimodal fusion, made visible."""

__version__ = "0.1.0"
