"""policy-watch: watch vendors' subprocessor lists and alert on every change."""

__version__ = "0.1.0"
