"""Prompt rendering: the tool instruction, flattened tool history and the Llama-2 chat format."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cf_llama2.errors import RequestValidationError
from cf_llama2.prompt import (
    flatten_messages,
    format_tool_calls,
    llama2_chat_prompt,
    name_tool_results,
    tool_system_prompt,
)
from cf_llama2.schema import Message, ToolCall
from cf_llama2.tool_calls import parse_text
from cf_llama2.tools import Tool
from cf_llama2.tools.describe import describe_parameters

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
TIME = Tool(name="get_time", description="The time now.")
TOOLS = [WEATHER, TIME]


def meta_chat_completion_text(dialog: Sequence[dict[str, str]]) -> str:
    """Meta's reference ``Llama.chat_completion`` prompt construction (llama repo,
    ``llama/generation.py``), with ``tokenizer.encode(s, bos, eos)`` written as text."""
    b_inst, e_inst = "[INST]", "[/INST]"
    b_sys, e_sys = "<<SYS>>\n", "\n<</SYS>>\n\n"
    dialog = list(dialog)
    if dialog[0]["role"] == "system":
        dialog = [
            {
                "role": dialog[1]["role"],
                "content": b_sys + dialog[0]["content"] + e_sys + dialog[1]["content"],
            },
            *dialog[2:],
        ]
    assert all(m["role"] == "user" for m in dialog[::2])
    assert all(m["role"] == "assistant" for m in dialog[1::2])
    text = "".join(
        f"<s>{b_inst} {prompt['content'].strip()} {e_inst} {answer['content'].strip()} </s>"
        for prompt, answer in zip(dialog[::2], dialog[1::2], strict=False)
    )
    assert dialog[-1]["role"] == "user"
    return text + f"<s>{b_inst} {dialog[-1]['content'].strip()} {e_inst}"


META_DIALOGS = [
    [{"role": "user", "content": "what is the recipe of mayonnaise?"}],
    [
        {"role": "user", "content": "I am going to Paris, what should I see?"},
        {"role": "assistant", "content": "Paris, the capital of France, is known for ...\n"},
        {"role": "user", "content": "What is so great about #1?"},
    ],
    [
        {"role": "system", "content": "Always answer with Haiku"},
        {"role": "user", "content": "I am going to Paris, what should I see?"},
    ],
    [
        {"role": "system", "content": "Always answer with emojis"},
        {"role": "user", "content": "  How to go from Beijing to NY?  "},
    ],
    [
        {"role": "system", "content": "Be brief.\nNever lie."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": " Hello! "},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
    ],
]


@pytest.mark.parametrize("dialog", META_DIALOGS)
def test_matches_meta_reference(dialog: list[dict[str, str]]) -> None:
    assert llama2_chat_prompt(dialog) == meta_chat_completion_text(dialog)


def test_reference_strings() -> None:
    assert llama2_chat_prompt([{"role": "user", "content": "Hi"}]) == "<s>[INST] Hi [/INST]"
    assert llama2_chat_prompt(
        [
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
        ]
    ) == ("<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]")


def test_custom_bos_eos() -> None:
    text = llama2_chat_prompt(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
        bos="",
        eos="<EOS>",
    )
    assert text == "[INST] a [/INST] b <EOS>[INST] c [/INST]"


def test_tool_results_are_user_turns() -> None:
    text = llama2_chat_prompt(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": '{"name": "get_weather", "arguments": {}}'},
            {"role": "tool", "content": "Tool result (get_weather): sunny"},
        ]
    )
    assert text == (
        "<s>[INST] Weather in Paris? [/INST] "
        '{"name": "get_weather", "arguments": {}} </s>'
        "<s>[INST] Tool result (get_weather): sunny [/INST]"
    )


def test_consecutive_user_side_messages_share_a_turn() -> None:
    text = llama2_chat_prompt(
        [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "tool", "content": "three"},
        ]
    )
    assert text == "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\none\n\ntwo\n\nthree [/INST]"


def test_consecutive_assistant_messages_share_an_answer() -> None:
    text = llama2_chat_prompt(
        [
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a1"},
            {"role": "assistant", "content": "a2"},
            {"role": "user", "content": "v"},
        ]
    )
    assert text == "<s>[INST] u [/INST] a1\n\na2 </s><s>[INST] v [/INST]"


def test_final_assistant_message_is_left_open() -> None:
    text = llama2_chat_prompt(
        [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "1, 2,"}]
    )
    assert text == "<s>[INST] Count [/INST] 1, 2,"


def test_assistant_first_gets_an_empty_instruction() -> None:
    text = llama2_chat_prompt(
        [{"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "Hi"}]
    )
    assert text == "<s>[INST]  [/INST] Welcome! </s><s>[INST] Hi [/INST]"


def test_system_only_is_rendered_as_its_own_turn() -> None:
    text = llama2_chat_prompt([{"role": "system", "content": "You are a poet."}])
    assert text == "<s>[INST] <<SYS>>\nYou are a poet.\n<</SYS>> [/INST]"


def test_later_system_message_folds_into_the_next_user_turn() -> None:
    text = llama2_chat_prompt(
        [
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
            {"role": "system", "content": "Now be formal."},
            {"role": "user", "content": "u2"},
        ]
    )
    assert text == (
        "<s>[INST] u1 [/INST] a1 </s><s>[INST] <<SYS>>\nNow be formal.\n<</SYS>>\n\nu2 [/INST]"
    )


def test_system_after_an_unanswered_user_turn_starts_a_new_turn() -> None:
    text = llama2_chat_prompt(
        [
            {"role": "user", "content": "u1"},
            {"role": "system", "content": "S"},
            {"role": "user", "content": "u2"},
        ]
    )
    assert text == "<s>[INST] u1 [/INST]<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nu2 [/INST]"


def test_no_message_is_dropped() -> None:
    messages = [
        {"role": "system", "content": "s1"},
        {"role": "system", "content": "s2"},
        {"role": "assistant", "content": "a0"},
        {"role": "user", "content": "u1"},
        {"role": "system", "content": "s3"},
        {"role": "tool", "content": "t1"},
        {"role": "assistant", "content": "a1"},
        {"role": "system", "content": "s4"},
    ]
    text = llama2_chat_prompt(messages)
    positions = [text.index(m["content"]) for m in messages]
    assert positions == sorted(positions), "every message appears, in order"


def test_bad_messages_raise() -> None:
    with pytest.raises(RequestValidationError, match="at least one message"):
        llama2_chat_prompt([])
    with pytest.raises(RequestValidationError, match=r"messages\[1\]\.role") as err:
        llama2_chat_prompt([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])
    assert err.value.field == "messages.1.role"
    with pytest.raises(RequestValidationError, match="flatten_messages"):
        llama2_chat_prompt([{"role": "user", "content": ["a"]}])  # type: ignore[dict-item]


# ---------------------------------------------------------------------------------------------
# tool_system_prompt


def test_tool_prompt_lists_every_tool_with_its_arguments() -> None:
    text = tool_system_prompt(TOOLS)
    for tool in TOOLS:
        assert f"- {tool.name}: {tool.description}" in text
        assert "\n".join(describe_parameters(tool.parameters)) in text
    assert '{"name": "<tool name>", "arguments": {' in text
    assert "ONLY" in text
    assert "plain text" in text


def test_tool_prompt_choices() -> None:
    auto = tool_system_prompt(TOOLS, "auto")
    required = tool_system_prompt(TOOLS, "required")
    named = tool_system_prompt(TOOLS, "get_time")
    assert "If no tool is needed" in auto
    assert "must call one of these tools" in required
    assert tool_system_prompt(TOOLS, "any") == required
    assert 'You must call the tool "get_time"' in named
    assert '{"name": "get_time", "arguments": {' in named
    assert "If no tool is needed" not in required + named
    assert tool_system_prompt(TOOLS, "none") == ""
    assert tool_system_prompt([]) == ""


def test_tool_prompt_bad_choice() -> None:
    with pytest.raises(RequestValidationError, match="not one of the tools") as err:
        tool_system_prompt(TOOLS, "get_stock")
    assert err.value.field == "tool_choice"
    with pytest.raises(RequestValidationError, match="needs tools"):
        tool_system_prompt([], "required")


def test_rendered_calls_parse_back_to_the_same_calls() -> None:
    calls = [
        ToolCall(id="c1", name="get_weather", arguments={"city": "Z\u00fcrich"}),
        ToolCall(id="c2", name="get_time", arguments={}),
    ]
    for subset in (calls[:1], calls):
        rest, parsed = parse_text(format_tool_calls(subset), TOOLS)
        assert rest == ""
        assert [(c.name, c.arguments) for c in parsed if isinstance(c, ToolCall)] == [
            (c.name, c.arguments) for c in subset
        ]


# ---------------------------------------------------------------------------------------------
# flatten_messages


def conversation() -> list[Message]:
    return [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris and the time?"),
        Message(
            role="assistant",
            content="Let me check.",
            tool_calls=[
                ToolCall(id="call_a", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="call_b", name="get_time", arguments={}),
            ],
        ),
        Message(role="tool", tool_call_id="call_a", content="sunny"),
        Message(role="tool", tool_call_id="call_b", name="get_time", content="12:00"),
        Message(role="assistant", content="Sunny, and it is noon."),
    ]


def test_flatten_renders_calls_and_results() -> None:
    out = flatten_messages(conversation())
    assert all(set(m) == {"role", "content"} for m in out)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert out[0]["content"] == "Be brief."
    assert out[2]["content"] == (
        "Let me check.\n"
        '[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "get_time", "arguments": {}}]'
    )
    assert out[3]["content"] == "Tool result (get_weather): sunny"
    assert out[4]["content"] == "Tool result (get_time): 12:00"


def test_flatten_single_call_without_text() -> None:
    out = flatten_messages(
        [
            Message(role="user", content="hi"),
            Message(role="assistant", tool_calls=[ToolCall(id="x", name="get_time")]),
            Message(role="tool", content="noon"),
        ]
    )
    assert out[1]["content"] == '{"name": "get_time", "arguments": {}}'
    assert out[2]["content"] == "Tool result: noon"


def test_flatten_merges_the_instruction_into_the_system_message() -> None:
    out = flatten_messages(conversation(), tools=TOOLS, tool_choice="required")
    assert len(out) == 6
    assert out[0]["role"] == "system"
    assert out[0]["content"] == "Be brief.\n\n" + tool_system_prompt(TOOLS, "required")


def test_flatten_adds_a_system_message_when_there_is_none() -> None:
    out = flatten_messages([Message(role="user", content="hi")], tools=TOOLS)
    assert out == [
        {"role": "system", "content": tool_system_prompt(TOOLS)},
        {"role": "user", "content": "hi"},
    ]


def test_flatten_without_instruction() -> None:
    messages = [Message(role="user", content="hi")]
    expected = [{"role": "user", "content": "hi"}]
    assert flatten_messages(messages, tools=TOOLS, tools_in_prompt=False) == expected
    assert flatten_messages(messages, tools=TOOLS, tool_choice="none") == expected
    assert flatten_messages(messages) == expected


def test_flatten_keeps_odd_orders() -> None:
    messages = [
        Message(role="assistant", content="a"),
        Message(role="assistant", content="b"),
        Message(role="user", content="c"),
        Message(role="system", content="d"),
        Message(role="user", content=""),
    ]
    out = flatten_messages(messages)
    assert out == [{"role": m.role, "content": m.content} for m in messages]


def test_flattened_conversation_renders_as_llama2() -> None:
    text = llama2_chat_prompt(flatten_messages(conversation(), tools=[WEATHER]))
    assert text.startswith("<s>[INST] <<SYS>>\nBe brief.\n\nYou can call these tools:")
    assert "Tool result (get_weather): sunny\n\nTool result (get_time): 12:00" in text
    assert text.endswith("[/INST] Sunny, and it is noon.")


def test_a_rendered_tool_result_is_not_rendered_twice() -> None:
    from cf_llama2.prompt import flatten_messages, format_tool_result, is_rendered_tool_result

    once = format_tool_result("18 C", call_id="call_1", name="get_weather")
    assert is_rendered_tool_result(once)
    assert not is_rendered_tool_result("18 C")
    # After one trip over the wire the id and name live only in the content.
    again = flatten_messages([Message(role="tool", content=once)])
    assert again == [{"role": "tool", "content": once}]
    # With an id the content is wrapped as usual, even when it looks rendered.
    wrapped = flatten_messages([Message(role="tool", content="x", tool_call_id="c2")])
    assert wrapped == [{"role": "tool", "content": "Tool result for c2: x"}]


def test_tool_results_are_named_after_the_call_they_answer() -> None:
    calls = [ToolCall(id="c1", name="get_weather", arguments={}), ToolCall(id="c2", name="b")]
    messages = [
        Message(role="user", content="hi"),
        Message(role="assistant", content="", tool_calls=calls),
        Message(role="tool", content="sunny", tool_call_id="c1"),
        Message(role="tool", content="kept", tool_call_id="c2", name="own"),
        Message(role="tool", content="unknown", tool_call_id="c9"),
    ]
    named = name_tool_results(messages)
    assert [m.name for m in named] == [None, None, "get_weather", "own", None]
    assert messages[2].name is None, "the input messages are not changed"
    assert named[:2] == messages[:2]


def test_random_call_ids_do_not_change_the_prompt() -> None:
    """Clients make call ids at random; the same conversation must be the same prompt."""

    def turn(call_id: str) -> list[Message]:
        call = ToolCall(id=call_id, name="get_weather", arguments={"city": "Paris"})
        return [
            Message(role="user", content="Weather in Paris?"),
            Message(role="assistant", content="", tool_calls=[call]),
            Message(role="tool", content="sunny", tool_call_id=call_id),
        ]

    first = flatten_messages(turn("call_3f9a1c"), tools=[WEATHER])
    assert first == flatten_messages(turn("call_77be02"), tools=[WEATHER])
    assert first[-1]["content"] == "Tool result (get_weather): sunny"
