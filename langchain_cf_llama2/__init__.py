"""Adapter package (being implemented)."""
