"""Prompt rendering: tool instructions, tool history in content, and the Llama-2 chat format.

Llama 2 was not trained for tool calling, so tools travel as text on both backends:

* :func:`tool_system_prompt` describes the tools (one line per argument, see
  :mod:`cf_llama2.tools.describe`) and the one call format the parser reads,
  ``{"name": "<tool>", "arguments": {...}}`` (a JSON list of those for several calls);
* :func:`flatten_messages` turns a conversation with tool calls and tool results into plain
  ``role``/``content`` messages (what the Workers AI wire carries), merging the tool instruction
  into the system message;
* :func:`llama2_chat_prompt` renders those messages in Meta's Llama-2 chat format
  (``<s>[INST] <<SYS>>\\n...\\n<</SYS>>\\n\\n... [/INST] ... </s>``), for local checkpoints whose
  tokenizer ships no chat template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import RequestValidationError
from .schema import Message, ToolCall
from .tools import Tool, normalize_tool_choice
from .tools.describe import describe_parameters

__all__ = [
    "B_INST",
    "B_SYS",
    "E_INST",
    "E_SYS",
    "flatten_messages",
    "format_tool_calls",
    "format_tool_result",
    "llama2_chat_prompt",
    "name_tool_results",
    "tool_system_prompt",
]

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


_ROLE_FORMS = "'system', 'user', 'assistant' or 'tool'"


def tool_system_prompt(
    tools: Sequence[Tool], tool_choice: str = "auto", *, schemas: bool = False
) -> str:
    """The instruction that tells the model which tools exist and how to call them.

    Args:
        tools: the tools the model may call.
        tool_choice: ``"auto"`` (call a tool or answer in text), ``"required"`` (alias
            ``"any"``: a call is mandatory), a tool name (that tool must be called) or
            ``"none"`` (no tools: the instruction is empty).
        schemas: describe each tool's arguments by its JSON schema (the earlier form) instead
            of one readable line per argument (see :mod:`cf_llama2.tools.describe`).

    Returns:
        The instruction text, or ``""`` when there are no tools or ``tool_choice="none"``.

    Raises:
        RequestValidationError: ``tool_choice`` names no tool in ``tools``.
    """
    choice = normalize_tool_choice(tool_choice, tools)
    if choice == "none" or not tools:
        return ""
    lines = ["You can call these tools:"]
    for tool in tools:
        desc = f": {tool.description.strip()}" if tool.description.strip() else ""
        if schemas:
            schema = json.dumps(tool.parameters, ensure_ascii=False)
            lines.append(f"- {tool.name}{desc}\n  arguments (JSON schema): {schema}")
        else:
            lines.append(f"- {tool.name}{desc}")
            lines.extend(describe_parameters(tool.parameters))
    shown = choice if choice not in ("auto", "required") else "<tool name>"
    lines.append("")
    lines.append(
        "To call a tool, reply with ONLY this JSON and no other text:\n"
        f'{{"name": "{shown}", "arguments": {{<arguments that match its schema>}}}}\n'
        "To call several tools at once, reply with a JSON list of such objects."
    )
    if choice == "auto":
        lines.append("If no tool is needed, answer in plain text without any JSON.")
    elif choice == "required":
        lines.append("You must call one of these tools now; do not answer in plain text.")
    else:
        lines.append(f'You must call the tool "{choice}" now; do not answer in plain text.')
    lines.append(
        'Tool results come back in messages that start with "Tool result"; use them to answer.'
    )
    return "\n".join(lines)


def format_tool_calls(calls: Sequence[ToolCall]) -> str:
    """Render tool calls in the JSON call format (one object, or a list for several)."""
    items = [{"name": c.name, "arguments": c.arguments} for c in calls]
    value: Any = items[0] if len(items) == 1 else items
    return json.dumps(value, ensure_ascii=False)


def format_tool_result(content: str, *, call_id: str | None, name: str | None) -> str:
    """Render a tool result as message content that names the call it answers.

    The tool's name is enough when it is known: the rendered calls carry no ids, so an id in
    the text tells the model nothing, and ids are often random (``call_<uuid>``), which would
    make the same conversation a different prompt, and a greedy answer differ, on every run.
    The id is shown only when the name is unknown.
    """
    shown_id = call_id if call_id and not name else None
    who = " ".join(
        p for p in (f"for {shown_id}" if shown_id else "", f"({name})" if name else "") if p
    )
    return f"Tool result {who}: {content}" if who else f"Tool result: {content}"


_RENDERED_RESULT = re.compile(r"^Tool result(?: for \S+)?(?: \([^)\n]*\))?: ")


def is_rendered_tool_result(content: str) -> bool:
    """Whether ``content`` already has the :func:`format_tool_result` form.

    A conversation that went over the wire once (remote client -> local server) carries its
    tool results already rendered; rendering them again would say "Tool result" twice.
    """
    return bool(_RENDERED_RESULT.match(content))


def name_tool_results(messages: Iterable[Message]) -> list[Message]:
    """The messages, each tool result without a ``name`` named after the call it answers.

    The name comes from the earlier assistant call whose id is the result's ``tool_call_id``;
    a result that names its tool, or whose call is not in the conversation, is kept as it is.
    """
    names_by_id: dict[str, str] = {}
    out: list[Message] = []
    for msg in messages:
        for call in msg.tool_calls:
            names_by_id[call.id] = call.name
        if msg.role == "tool" and not msg.name:
            name = names_by_id.get(msg.tool_call_id or "")
            if name:
                msg = msg.model_copy(update={"name": name})
        out.append(msg)
    return out


def flatten_messages(
    messages: Sequence[Message],
    *,
    tools: Sequence[Tool] = (),
    tool_choice: str = "auto",
    tools_in_prompt: bool = True,
    tool_schemas: bool = False,
) -> list[dict[str, str]]:
    """Turn a conversation into wire messages that carry only ``role`` and ``content``.

    * an assistant message's ``tool_calls`` are appended to its content in the JSON call format
      (after any text, on a new line);
    * a ``tool`` message keeps ``role="tool"``; its content names the tool (from the message or
      from the assistant call with that id; the call id only when no name is known) and carries
      the result;
    * with ``tools_in_prompt`` and tools (and ``tool_choice`` not ``"none"``), the tool
      instruction of :func:`tool_system_prompt` is appended to the first message when it is a
      system message, else put in a new system message first (``tool_schemas``: with each
      tool's JSON schema instead of a line per argument).

    Every message is kept, in order, whatever the role sequence.

    Raises:
        RequestValidationError: ``tool_choice`` names no tool in ``tools``.
    """
    out: list[dict[str, str]] = []
    for msg in name_tool_results(messages):
        if msg.role == "assistant" and msg.tool_calls:
            calls = format_tool_calls(msg.tool_calls)
            content = f"{msg.content}\n{calls}" if msg.content else calls
            out.append({"role": "assistant", "content": content})
        elif msg.role == "tool":
            name = msg.name
            if not msg.tool_call_id and not name and is_rendered_tool_result(msg.content):
                content = msg.content
            else:
                content = format_tool_result(msg.content, call_id=msg.tool_call_id, name=name)
            out.append({"role": "tool", "content": content})
        else:
            out.append({"role": msg.role, "content": msg.content})
    instruction = (
        tool_system_prompt(tools, tool_choice, schemas=tool_schemas) if tools_in_prompt else ""
    )
    if instruction:
        if out and out[0]["role"] == "system":
            first = out[0]["content"]
            out[0] = {
                "role": "system",
                "content": f"{first}\n\n{instruction}" if first.strip() else instruction,
            }
        else:
            out.insert(0, {"role": "system", "content": instruction})
    return out


@dataclass
class _Turn:
    """One ``[INST]`` exchange: system and user-side contents, then the answer (if any)."""

    system: list[str] = field(default_factory=list)
    user: list[str] = field(default_factory=list)
    answer: list[str] | None = None

    def prompt(self) -> str:
        head = B_SYS + "\n\n".join(self.system) + E_SYS if self.system else ""
        return (head + "\n\n".join(u for u in self.user if u.strip())).strip()

    def reply(self) -> str:
        return "\n\n".join(self.answer or []).strip()


def _message_parts(message: Mapping[str, str], index: int) -> tuple[str, str]:
    role = message.get("role")
    content = message.get("content", "")
    if role not in ("system", "user", "assistant", "tool"):
        raise RequestValidationError(
            f"messages[{index}].role must be {_ROLE_FORMS}; got {role!r}",
            field=f"messages.{index}.role",
            value=role,
            limit=_ROLE_FORMS,
        )
    if not isinstance(content, str):
        kind = type(content).__name__
        fix = "Flatten tool calls and results first with flatten_messages()."
        raise RequestValidationError(
            field=f"messages.{index}.content", limit="a string", value=kind, got=kind, fix=fix
        )
    return role, content


def llama2_chat_prompt(
    messages: Sequence[Mapping[str, str]], *, bos: str = "<s>", eos: str = "</s>"
) -> str:
    """Render flattened messages in Meta's Llama-2 chat format.

    The format of Meta's reference ``chat_completion``: each exchange is
    ``{bos}[INST] {user} [/INST] {assistant} {eos}`` (contents stripped), the system message is
    folded into the first user turn as ``<<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user}``, and the
    prompt ends open after the last ``[/INST]`` for the model to answer.

    Where Meta's code asserts a strict system/user/assistant alternation, this renders every
    order instead of failing or dropping a message:

    * ``tool`` messages are user turns (their content already names the call, see
      :func:`flatten_messages`);
    * consecutive user-side messages share one ``[INST]`` turn, joined by a blank line, and
      consecutive assistant messages share one answer the same way;
    * a system message after a user or assistant message starts a new turn; system messages
      are folded into their turn's user part (system messages with no user message after them
      make a turn of their own:
      ``[INST] <<SYS>>\\n...\\n<</SYS>> [/INST]``); a user turn left without an answer that
      way is rendered as ``{bos}[INST] {user} [/INST]`` with no answer and no ``eos``;
    * an assistant message before any user turn gets an empty ``[INST]  [/INST]`` turn;
    * a final assistant message is left open (no ``eos``): the model continues it.

    Args:
        messages: ``{"role", "content"}`` mappings (see :func:`flatten_messages`).
        bos: the begin-of-sequence text put before each turn.
        eos: the end-of-sequence text put after each answer.

    Raises:
        RequestValidationError: no messages, or a role/content that is not a string role/text.
    """
    if not messages:
        fix = "Add a message to render a Llama-2 prompt."
        raise RequestValidationError(
            field="messages", limit="a list of at least one message", value=[], fix=fix
        )
    turns: list[_Turn] = [_Turn()]
    for index, message in enumerate(messages):
        role, content = _message_parts(message, index)
        turn = turns[-1]
        if role == "system":
            if turn.user or turn.answer is not None:
                turns.append(turn := _Turn())
            turn.system.append(content)
        elif role in ("user", "tool"):
            if turn.answer is not None:
                turns.append(turn := _Turn())
            turn.user.append(content)
        else:
            turn.answer = [*(turn.answer or []), content]
    parts: list[str] = []
    for i, turn in enumerate(turns):
        text = f"{bos}{B_INST} {turn.prompt()} {E_INST}"
        if turn.answer is not None:
            text += f" {turn.reply()}" if i == len(turns) - 1 else f" {turn.reply()} {eos}"
        parts.append(text)
    return "".join(parts)
