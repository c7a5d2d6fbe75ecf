"""The Workers AI wire format as pure functions: request bodies, envelopes and stream payloads.

Client side (the remote backend):

* :func:`request_to_body` builds the exact body of the model page (either tool form).
* :func:`request_options_header` carries what the wire has no field for (``tool_choice``,
  ``stop``, ``response_format``) as the JSON header :data:`OPTIONS_HEADER`. Cloudflare ignores
  it; the local server honours it. The remote backend also emulates these options itself:
  ``tool_choice="none"`` sends no tools, a named tool sends only that tool, the tool and format
  instructions are merged into the system prompt, and stop sequences are applied to the text.
* :func:`envelope_result` checks a success envelope; :class:`WireStreamDecoder` turns result
  objects and stream payloads into :data:`~cf_llama2.schema.StreamEvent` (text-form tool calls
  parsed when the request had tools) and :func:`envelope_to_events` does it for a whole answer.

Server side (the local server):

* :func:`body_to_request` validates a body (plus the options header) into a request; keys the
  server does not read are dropped and noted (:mod:`cf_llama2.wire.tolerant`), and
  :func:`notes_to_messages` turns the notes into the envelope's ``messages``.
* :func:`result_to_envelope` / :func:`error_to_envelope` build the answer envelopes.
* :func:`event_to_sse_payload` and :class:`SSEEncoder` frame stream events as ``data:`` lines:
  text as ``{"response": ...}``, one payload per complete tool call, a late usage payload that
  also carries ``finish_reason`` (our extension), then ``data: [DONE]``.
"""

from __future__ import annotations

from .decode import WireStreamDecoder, envelope_to_events
from .encode import DONE_LINE, PendingPayload, SSEEncoder, event_to_sse_payload
from .envelope import envelope_result, error_to_envelope, notes_to_messages, result_to_envelope
from .request import (
    OPTIONS_HEADER,
    body_to_request,
    request_options_header,
    request_to_body,
    response_format_instruction,
    sent_tools,
)

__all__ = [
    "DONE_LINE",
    "OPTIONS_HEADER",
    "PendingPayload",
    "SSEEncoder",
    "WireStreamDecoder",
    "body_to_request",
    "envelope_result",
    "envelope_to_events",
    "error_to_envelope",
    "event_to_sse_payload",
    "notes_to_messages",
    "request_options_header",
    "request_to_body",
    "response_format_instruction",
    "result_to_envelope",
    "sent_tools",
]
