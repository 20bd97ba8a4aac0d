"""Tests of the kernel service (services/kernel): journal, recovery and the gRPC surface."""
