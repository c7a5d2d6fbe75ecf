"""Importing the adapter must stay light: no torch, no transformers."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, langchain_cf_llama2\n"
        "from langchain_cf_llama2 import ChatCloudflareLlama2, CloudflareLlama2\n"
        "ChatCloudflareLlama2(backend='local'); CloudflareLlama2(backend='local')\n"
        "heavy = [m for m in ('torch', 'transformers', 'bitsandbytes') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
