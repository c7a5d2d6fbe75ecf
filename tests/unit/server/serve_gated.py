"""``cf-llama2 serve``'s server loop on a never-ending fake backend, for signal tests.

Run as ``python -m tests.unit.server.serve_gated [serve flags]``: the same flags, banner,
shutdown and exit status as the command, without loading a model.
"""

from __future__ import annotations

import os
import sys

from cf_llama2.cli import build_parser
from cf_llama2.cli._common import SERVER_TOKEN_ENV
from cf_llama2.cli._token import resolve_token
from cf_llama2.cli.serve import _run_server

from .conftest import MODEL
from .fakes import GatedBackend


def main() -> int:
    args = build_parser().parse_args(["serve", "--port", "0", *sys.argv[1:]])
    token = resolve_token(args.api_token, args.api_token_file, os.environ.get(SERVER_TOKEN_ENV))
    return _run_server(args, {MODEL: GatedBackend(tokens=3000)}, token, sys.stdout, [])


if __name__ == "__main__":
    sys.exit(main())
