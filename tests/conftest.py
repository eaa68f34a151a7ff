"""Fixtures for every test; the real local parts they use live in pwtest.py."""

from pwtest import pages, smtp

__all__ = ["pages", "smtp"]
