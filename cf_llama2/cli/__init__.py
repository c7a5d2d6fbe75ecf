"""The ``cf-llama2`` command line: ``serve``, ``chat`` and ``prepare``.

Examples:
    cf-llama2 prepare
    cf-llama2 serve --port 8787 --model my-llama=meta-llama/Llama-2-7b-chat-hf
    cf-llama2 chat "What is the weather in Paris?" --tools tools.json --stream
    cf-llama2 chat "Hi" --backend remote --base-url http://127.0.0.1:8787/client/v4

Exit codes: 0 success, 1 the model or service failed (or a package is missing), 2 bad input
(arguments, files, request fields, configuration), 130 interrupted.
Heavy packages (torch, transformers, Starlette, uvicorn) load only in the commands that need them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TextIO

from .. import __version__
from ..errors import (
    CfLlama2Error,
    ConfigurationError,
    MissingDependencyError,
    RequestValidationError,
)
from ._common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from .chat import add_chat_command
from .prepare import add_prepare_command
from .serve import add_serve_command, parse_lora_mappings, parse_model_mappings

__all__ = ["build_parser", "main", "parse_lora_mappings", "parse_model_mappings"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cf-llama2`` (every command has ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="cf-llama2",
        description=(
            "Llama 2 chat with real tool calling, on Cloudflare Workers AI or a local int8 model."
        ),
        epilog="Run 'cf-llama2 COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    add_serve_command(commands)
    add_chat_command(commands)
    add_prepare_command(commands)
    return parser


def _exit_code(error: BaseException) -> int:
    if isinstance(error, MissingDependencyError):
        return EXIT_FAILED
    if isinstance(error, (UsageError, RequestValidationError, ConfigurationError)):
        return EXIT_USAGE
    return EXIT_FAILED


def main(argv: Iterable[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run ``cf-llama2`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Errors are printed to stderr as one ``error: ...`` line (never a traceback): bad input
    exits with 2, a failing model or service with 1.
    """
    stdout = out if out is not None else sys.stdout
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        code: int = args.handler(args, stdout)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CfLlama2Error, ImportError) as error:
        if isinstance(error, ImportError) and not isinstance(error, ConfigurationError):
            message = (
                f"{error}. Install what this command needs: pip install 'cf-llama2[local,server]'"
            )
        else:
            message = str(error)
        print(f"cf-llama2 {args.command}: error: {message}", file=sys.stderr)
        return _exit_code(error)
