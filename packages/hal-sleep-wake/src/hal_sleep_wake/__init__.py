"""hal_sleep_wake."""

__version__ = "0.1.0"
