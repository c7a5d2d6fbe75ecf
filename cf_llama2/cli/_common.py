"""Shared by the ``cf-llama2`` subcommands: exit codes, defaults, ``UsageError``, arg types."""

from __future__ import annotations

import argparse

from ..backends.remote.config import DEFAULT_SERVED_MODEL
from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SERVED_MODEL",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SERVER_TOKEN_ENV",
    "UsageError",
    "float_arg",
    "non_negative_int",
    "port",
    "positive_int",
]

SERVER_TOKEN_ENV = "CF_LLAMA2_SERVER_TOKEN"
DEFAULT_PORT = 8787

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ConfigurationError):
    """Bad command-line input (exit code 2)."""


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}; got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def port(text: str) -> int:
    """An argparse type: a TCP port, 0..65535 (0: any free port)."""
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535; got {value}")
    return value


def float_arg(text: str) -> float:
    """An argparse type: a number."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
