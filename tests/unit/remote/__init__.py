"""Tests of the remote backend and the wire format."""
