"""Where ``cf-llama2 serve`` takes its bearer token from, and how to show that in a hint.

The token can come from ``--api-token`` (visible to anyone who can run ``ps``), from a file
(``--api-token-file``) or from the environment (``CF_LLAMA2_SERVER_TOKEN``). The banner's curl
hint refers to the source in effect and never prints the token itself.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field

from ._common import SERVER_TOKEN_ENV, UsageError

__all__ = ["TokenSource", "resolve_token"]


@dataclass(frozen=True)
class TokenSource:
    """A bearer token and the shell expression that yields it (for hints).

    Attributes:
        value: the token (never shown in ``repr``).
        curl_header: the curl ``-H`` argument that sends it, without the token itself.
    """

    value: str = field(repr=False)
    curl_header: str


def _read_token_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        raise UsageError(
            f"--api-token-file {path!r}: cannot read it ({exc.strerror or exc})"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"--api-token-file {path!r}: the file is not UTF-8 text") from None
    if not token:
        raise UsageError(f"--api-token-file {path!r}: the file is empty; write the token in it")
    return token


def resolve_token(flag: str | None, path: str | None, env: str | None) -> TokenSource | None:
    """The token in effect: ``--api-token``, else ``--api-token-file``, else the environment.

    Raises:
        UsageError: both ``--api-token`` and ``--api-token-file``, an unreadable or empty file,
            or an empty ``--api-token``.
    """
    if flag is not None and path is not None:
        raise UsageError("give the token once: --api-token or --api-token-file, not both")
    if flag is not None:
        if not flag.strip():
            raise UsageError("--api-token is empty; give a token, or leave the flag out")
        print(
            f"note: --api-token shows in the process list; prefer ${SERVER_TOKEN_ENV} or "
            "--api-token-file",
            file=sys.stderr,
        )
        return TokenSource(flag.strip(), '-H "Authorization: Bearer <the --api-token value>"')
    if path is not None:
        quoted = shlex.quote(path)
        return TokenSource(_read_token_file(path), f'-H "Authorization: Bearer $(cat {quoted})"')
    if env and env.strip():
        return TokenSource(env.strip(), f'-H "Authorization: Bearer ${SERVER_TOKEN_ENV}"')
    return None
