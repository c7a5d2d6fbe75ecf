"""Prompt rendering: tool instructions, tool history in content, and the Llama-2 chat format.

CONTRACT (being implemented; signatures are fixed, other modules code against them):

* ``tool_system_prompt(tools: Sequence[Tool], tool_choice: str = "auto") -> str``: the
  instruction that describes the tools and the call format
  ``{"name": ..., "arguments": {...}}``.
* ``flatten_messages(messages: Sequence[Message], *, tools: Sequence[Tool] = (),
  tool_choice: str = "auto", tools_in_prompt: bool = True) -> list[dict[str, str]]``: wire
  messages (``role``, ``content`` only): assistant ``tool_calls`` rendered into content as the
  JSON call format, tool results as ``role="tool"`` content naming the call, and (when
  ``tools_in_prompt``) the tool instruction merged into the system message.
* ``llama2_chat_prompt(messages: Sequence[Mapping[str, str]], *, bos: str = "<s>",
  eos: str = "</s>") -> str``: the Llama-2 ``[INST] <<SYS>>`` format over flattened messages.
"""
