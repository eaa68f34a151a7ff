"""Fixtures for every test; the real local parts they use live in pwtest.py."""

import os

from hypothesis import settings
from pwtest import pages, smtp

__all__ = ["pages", "smtp"]

# CI runs the property tests on a fixed seed, so a run is repeatable; developers' runs explore.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
