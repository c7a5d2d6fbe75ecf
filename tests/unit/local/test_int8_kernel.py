"""The compiled AVX2 int8 matmul: exact integer products, its switch and its fallbacks."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from cf_llama2.backends.local import int8_kernel  # noqa: E402
from cf_llama2.errors import ConfigurationError  # noqa: E402


def _fallback(a: Any, b: Any) -> Any:
    return torch.matmul(a.long(), b.long().t()).to(torch.int32)


@pytest.fixture
def matmul() -> Any:
    mm = int8_kernel.avx2_int8_matmul(_fallback)
    if mm is None:
        pytest.skip("no AVX2 or no C compiler here")
    return mm


@pytest.mark.parametrize(
    ("rows", "n", "k"), [(1, 576, 576), (1, 5, 7), (3, 577, 1537), (16, 64, 16), (1, 9, 4096)]
)
def test_kernel_gives_the_exact_integer_products(matmul: Any, rows: int, n: int, k: int) -> None:
    gen = torch.Generator().manual_seed(rows * 1000 + n + k)
    a = torch.randint(-128, 128, (rows, k), dtype=torch.int8, generator=gen)
    b = torch.randint(-128, 128, (n, k), dtype=torch.int8, generator=gen)
    a[0, :] = -128  # the extremes: the 16-bit pair sums must not saturate
    b[0, :] = -128
    assert torch.equal(matmul(a, b), _fallback(a, b))


def test_long_inputs_and_other_dtypes_take_the_fallback(matmul: Any) -> None:
    calls: list[int] = []

    def fallback(a: Any, b: Any) -> Any:
        calls.append(a.shape[0])
        return _fallback(a, b)

    mm = int8_kernel.avx2_int8_matmul(fallback)
    assert mm is not None
    b = torch.ones((4, 8), dtype=torch.int8)
    mm(torch.ones((int8_kernel.MAX_ROWS + 1, 8), dtype=torch.int8), b)
    mm(torch.ones((1, 8), dtype=torch.int8), b)
    assert calls == [int8_kernel.MAX_ROWS + 1]


def test_switch_off_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(int8_kernel.ENV_SWITCH, "off")
    assert int8_kernel.avx2_int8_matmul(_fallback) is None
    monkeypatch.setenv(int8_kernel.ENV_SWITCH, "fast")
    with pytest.raises(ConfigurationError, match=int8_kernel.ENV_SWITCH):
        int8_kernel.kernel_enabled()


def test_no_compiler_means_no_kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(int8_kernel, "_loaded", {})
    monkeypatch.setattr(int8_kernel, "_cpu_has_avx2", lambda: True)
    monkeypatch.setenv("CF_LLAMA2_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setattr(int8_kernel.shutil, "which", lambda name: None)
    assert int8_kernel.avx2_int8_matmul(_fallback) is None


def _reference(x: Any, w: Any, scb: Any, dequant: float) -> Any:
    """bitsandbytes' float operations for a layer without outliers (as the lean forward)."""
    xf = x.to(torch.float16).float()
    stats = xf.abs().amax(dim=1)
    q = torch.round(xf * (127.0 / stats.unsqueeze(-1))).to(torch.int8)
    acc = _fallback(q, w)
    return (acc * (stats.unsqueeze(-1) * scb.unsqueeze(0)) * dequant).to(x.dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("rows", [1, 3])
def test_whole_layer_is_bit_identical(rows: int, dtype: str) -> None:
    linear = int8_kernel.avx2_int8_linear()
    if linear is None:
        pytest.skip("no AVX2 or no C compiler here")
    gen = torch.Generator().manual_seed(rows)
    x = (torch.randn((rows, 576), generator=gen) * 1.5).to(getattr(torch, dtype))
    w = torch.randint(-127, 128, (200, 576), dtype=torch.int8, generator=gen)
    scb = torch.rand(200, generator=gen) * 0.3
    x[x.abs() >= 6.0] = 1.0
    out = linear(x, w, scb, 6.0, 6.200124e-05)
    assert out is not None
    assert torch.equal(out, _reference(x, w, scb, 6.200124e-05))
    x[0, 7] = 6.5  # an outlier: the caller's general path
    assert linear(x, w, scb, 6.0, 6.200124e-05) is None
    assert linear(torch.zeros_like(x), w, scb, 6.0, 6.200124e-05) is None
