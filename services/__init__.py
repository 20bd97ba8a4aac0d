"""PINK services: kernel, venue, persistence and policy, each a gRPC server around its own core."""
