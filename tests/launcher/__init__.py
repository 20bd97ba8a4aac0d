"""Tests of the platform launcher (python -m services.launcher)."""
