"""Tests of the kernel binding (pink_kernel)."""
