"""Tool-call parsing: structured wire calls, calls in model text, and an incremental stream parser.

CONTRACT (being implemented; signatures are fixed, other modules code against them):

* ``new_tool_call_id() -> str``: a unique id ``"call_" + 24 hex chars``.
* ``calls_from_wire(raw: Any) -> list[ToolCall | InvalidToolCall]``: the ``tool_calls`` list of a
  Workers AI result (no ids on the wire; ``arguments`` an object or a JSON string).
* ``parse_text(text: str, tools: Sequence[Tool] = ()) -> tuple[str, list[ToolCall | InvalidToolCall]]``:
  the text outside calls and the calls found in model text (JSON object or list, code fences,
  after prose, ``<tool_call>`` tags, ...). With ``tools``, names are checked against them.
* ``class ToolCallStreamParser(tools: Sequence[Tool] = ())`` with
  ``feed(text: str) -> list[TextDelta | ToolCallDelta]`` and
  ``finish(finish_reason: FinishReason) -> tuple[list[TextDelta | ToolCallDelta], FinishReason]``.
"""
