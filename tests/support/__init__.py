"""Test helpers: the loopback Workers AI fake server."""
