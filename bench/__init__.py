"""Benchmarks of the PINK kernel and services; results go to bench/results/."""
