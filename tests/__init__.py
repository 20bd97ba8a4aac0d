"""PINK test suite."""
