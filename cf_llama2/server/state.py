"""What every route of one server shares: models, tokens, admission, limits and the failure log.

Built once by :func:`cf_llama2.server.create_app` and handed to the ``/ai/run`` endpoint and the
OpenAI-compatible endpoints alike, so both see the same queue, body budget, shutdown gate and
LoRA policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .connections import BodyBudget
from .failures import FailureLog
from .lifecycle import ShutdownGate
from .lora import LoraPolicy
from .queue import AdmissionQueue
from .registry import ModelRegistry
from .request_io import TokenCheck

__all__ = ["ServerState"]


@dataclass(frozen=True)
class ServerState:
    """The server's shared state.

    Args:
        registry: the served models.
        tokens: the API-token check.
        queue: admission (how many requests run and wait).
        max_body: the largest request body, in bytes.
        lora: which LoRA adapters may be named.
        budget: bytes of request bodies in flight across connections.
        body_timeout: seconds a client has to send its body.
        gate: refuses new work once the server is stopping.
        failures: unexpected failures, logged once per kind.
    """

    registry: ModelRegistry
    tokens: TokenCheck
    queue: AdmissionQueue
    max_body: int
    lora: LoraPolicy
    budget: BodyBudget
    body_timeout: float = 30.0
    gate: ShutdownGate = field(default_factory=ShutdownGate)
    failures: FailureLog = field(default_factory=FailureLog)
