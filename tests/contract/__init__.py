"""Tests of the pink.v1 contract as the Python services see it."""
