"""circadian_vision."""

__version__ = "0.1.0"
