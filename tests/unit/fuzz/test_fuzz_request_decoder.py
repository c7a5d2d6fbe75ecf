"""Fuzz the server's request decoder: every input is a request or a typed error, nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from cf_llama2.errors import CfLlama2Error
from cf_llama2.schema import ChatRequest, PromptRequest

pytest.importorskip("starlette")

from cf_llama2.server.app import _decode

from .conftest import CASES_PER_EXAMPLE, FUZZ
from .strategies import raw_bodies

OPTIONS = [None, '{"tool_choice": "required"}', '{"stop": ["x"]}', "{", '{"zzz": 1}']


@pytest.mark.timeout(300)
@FUZZ
@given(raw_bodies())
def test_any_body_decodes_or_raises_a_typed_error(batch: list[bytes]) -> None:
    assert len(batch) == CASES_PER_EXAMPLE
    for i, raw in enumerate(batch):
        header = OPTIONS[i % len(OPTIONS)]
        outcome: Any
        try:
            outcome = _decode(raw, header)
        except CfLlama2Error as error:
            outcome = error
        if isinstance(outcome, CfLlama2Error):
            assert str(outcome)  # a message a person can read
        else:
            assert isinstance(outcome, (ChatRequest, PromptRequest))
