"""``cf_llama2.tool_calls`` is the public API of the tool-call modules."""

from __future__ import annotations

import cf_llama2.tool_calls as facade
from cf_llama2.tool_calls import parser as tool_call_parser
from cf_llama2.tool_calls import shape as tool_call_shape
from cf_llama2.tool_calls import wire as tool_call_wire


def test_facade_re_exports_the_implementations() -> None:
    assert facade.ToolCallStreamParser is tool_call_parser.ToolCallStreamParser
    assert facade.parse_text is tool_call_parser.parse_text
    assert facade.calls_from_wire is tool_call_wire.calls_from_wire
    assert facade.new_tool_call_id is tool_call_shape.new_tool_call_id
    assert facade.unknown_tool_error is tool_call_shape.unknown_tool_error
    assert facade.NAME_KEYS == ("name", "function", "tool")
    assert facade.ARGUMENT_KEYS == ("arguments", "parameters", "tool_input")
    assert all(hasattr(facade, name) for name in facade.__all__)
