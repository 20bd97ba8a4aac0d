"""Code shared by every PINK service."""
