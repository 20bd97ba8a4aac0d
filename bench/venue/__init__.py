"""Benchmarks of the venue service against the BingX simulator (``python -m bench.venue``)."""
