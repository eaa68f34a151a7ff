"""Fixtures for every test; the real local parts they use live in pwtest.py."""

import os

from hypothesis import settings
from pwtest import pages, smtp

__all__ = ["pages", "smtp"]

# CI runs the property tests on a fixed seed, so a run is repeatable; developers' runs explore.
# No deadline per example: on a loaded machine a slow example is not a failure.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
