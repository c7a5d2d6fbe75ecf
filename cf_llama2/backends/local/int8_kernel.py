"""An exact int8 x int8 -> int32 matmul for CPUs without AVX-512, built once with the C compiler.

bitsandbytes multiplies int8 matrices with ``torch._int_mm`` on CPUs with AVX-512; elsewhere
(AVX2 only, e.g. AMD Zen 2/3) it falls back to a float32 matmul that converts the whole int8
weight to float32 on every call, which makes an int8 decode step several times slower than the
float32 model (measured on SmolLM2-135M: ~10x). ``torch._int_mm`` itself has no fast AVX2 path.

This module compiles a small AVX2 kernel (``madd`` of sign-extended 16-bit pairs into 32-bit
sums: integer arithmetic, so the results are exactly the integer products ``torch._int_mm``
gives) into the cache directory on first use and calls it through :mod:`ctypes`. It serves
inputs of up to :data:`MAX_ROWS` rows (decode steps, small batches); longer prompts keep
bitsandbytes' matmul, which reads each weight once for all rows. For a layer call without
outliers the kernel also runs the quantization and dequantization, in bitsandbytes' order of
float operations, so the lean forward makes one call instead of ~20 tensor ops.

Set ``CF_LLAMA2_INT8_KERNEL=off`` to never build or use it; without a C compiler, or when the
build fails, bitsandbytes' matmul is used as before (nothing else changes). The build takes
about a second, once per machine (the library is cached under the source's hash).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from ...errors import ConfigurationError

__all__ = ["ENV_SWITCH", "MAX_ROWS", "avx2_int8_linear", "avx2_int8_matmul", "kernel_enabled"]

logger = logging.getLogger(__name__)

ENV_SWITCH = "CF_LLAMA2_INT8_KERNEL"
"""Environment variable: ``off`` disables the compiled kernel, ``auto`` (default) builds it
where it helps (AVX2 CPUs without AVX-512)."""

MAX_ROWS = 16
"""Inputs with more rows than this (prompt prefill) keep bitsandbytes' matmul."""

_SOURCE = r"""
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline int32_t hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline __m256i w16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

/* out[m, n] = sum_k a[m, k] * w[n, k]; a: M x K, w: N x K, out: M x N, all row-major. */
void cf_int8_mm(const int8_t *a, const int8_t *w, int32_t *out, int64_t M, int64_t N, int64_t K) {
    int64_t k16 = K & ~(int64_t)15;
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) {
        const int8_t *w0 = w + n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        for (int64_t m = 0; m < M; m++) {
            const int8_t *x = a + m * K;
            __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
            for (int64_t k = 0; k < k16; k += 16) {
                __m256i xv = w16(x + k);
                c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(xv, w16(w0 + k)));
                c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(xv, w16(w1 + k)));
                c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(xv, w16(w2 + k)));
                c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(xv, w16(w3 + k)));
            }
            int32_t s0 = hsum(c0), s1 = hsum(c1), s2 = hsum(c2), s3 = hsum(c3);
            for (int64_t k = k16; k < K; k++) {
                s0 += (int32_t)x[k] * w0[k];
                s1 += (int32_t)x[k] * w1[k];
                s2 += (int32_t)x[k] * w2[k];
                s3 += (int32_t)x[k] * w3[k];
            }
            int32_t *o = out + m * N + n;
            o[0] = s0; o[1] = s1; o[2] = s2; o[3] = s3;
        }
    }
    for (; n < N; n++) {
        const int8_t *w0 = w + n * K;
        for (int64_t m = 0; m < M; m++) {
            const int8_t *x = a + m * K;
            __m256i c0 = _mm256_setzero_si256();
            for (int64_t k = 0; k < k16; k += 16)
                c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(w16(x + k), w16(w0 + k)));
            int32_t s0 = hsum(c0);
            for (int64_t k = k16; k < K; k++) s0 += (int32_t)x[k] * w0[k];
            out[m * N + n] = s0;
        }
    }
}

/* LLM.int8() of a linear layer without outliers, in bitsandbytes' order of float operations:
   x (bfloat16 if x_bf16, else float32; M x K) through float16, row-wise int8 with scale
   127 * (1 / absmax), the int8 matmul with w (N x K), then acc * (absmax * scb[n]) * dequant,
   written in the input's dtype.
   Returns 1, having written nothing, when a row holds an outlier (|x| >= threshold, with
   threshold > 0), a NaN or only zeros: the caller then takes the general path. */
int cf_int8_linear(const void *x, int x_bf16, const int8_t *w, const float *scb, void *out,
                   int8_t *q, int32_t *acc, float *xf, float *stats,
                   int64_t M, int64_t N, int64_t K, float threshold, float dequant) {
    for (int64_t m = 0; m < M; m++) {
        float amax = 0.0f;
        for (int64_t k = 0; k < K; k++) {
            float f;
            if (x_bf16) {
                uint32_t bits = (uint32_t)((const uint16_t *)x)[m * K + k] << 16;
                memcpy(&f, &bits, 4);
            } else {
                f = ((const float *)x)[m * K + k];
            }
            f = _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
            float mag = fabsf(f);
            if (mag != mag || (threshold > 0.0f && mag >= threshold)) return 1;
            if (mag > amax) amax = mag;
            xf[m * K + k] = f;
        }
        if (amax == 0.0f || amax > 3.0e38f) return 1;
        stats[m] = amax;
    }
    for (int64_t m = 0; m < M; m++) {
        float scale = (1.0f / stats[m]) * 127.0f; /* torch: 127.0 / t is t.reciprocal() * 127 */
        for (int64_t k = 0; k < K; k++)
            q[m * K + k] = (int8_t)nearbyintf(xf[m * K + k] * scale);
    }
    cf_int8_mm(q, w, acc, M, N, K);
    for (int64_t m = 0; m < M; m++) {
        float rs = stats[m];
        for (int64_t n = 0; n < N; n++) {
            float t = rs * scb[n];
            float v = (float)acc[m * N + n] * t;
            v = v * dequant;
            if (x_bf16) { /* to bfloat16, rounding to nearest even as torch does */
                uint32_t bits;
                memcpy(&bits, &v, 4);
                bits = v != v ? 0x7FC00000u : bits + 0x7FFFu + ((bits >> 16) & 1u);
                ((uint16_t *)out)[m * N + n] = (uint16_t)(bits >> 16);
            } else {
                ((float *)out)[m * N + n] = v;
            }
        }
    }
    return 0;
}
"""

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def kernel_enabled() -> bool:
    """Whether ``CF_LLAMA2_INT8_KERNEL`` allows the compiled kernel (``auto`` or ``off``)."""
    value = os.environ.get(ENV_SWITCH, "auto").strip().lower()
    if value not in ("auto", "off"):
        raise ConfigurationError(
            f"{ENV_SWITCH} must be 'auto' (build the AVX2 int8 kernel where it helps) or 'off' "
            f"(always use bitsandbytes' matmul); got {value!r}"
        )
    return value == "auto"


def _cpu_has_avx2() -> bool:
    import torch

    return str(torch.backends.cpu.get_cpu_capability()) in ("AVX2", "AVX512")


def _build(target: Path) -> None:
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler (cc or gcc) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "kernel.c"
        src.write_text(_SOURCE)
        out = Path(tmp) / target.name
        cmd = [compiler, "-O3", "-mavx2", "-mf16c", "-ffp-contract=off", "-fno-fast-math"]
        cmd += ["-shared", "-fPIC", "-o", str(out), str(src), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.replace(out, target)  # atomic: concurrent builders leave one complete library


def _library() -> Any:
    """The loaded kernel library, building it on first use; ``None`` when unavailable."""
    with _lock:
        if "lib" in _loaded:
            return _loaded["lib"]
        lib = None
        try:
            from .embedded import cache_dir

            digest = hashlib.sha256(_SOURCE.encode()).hexdigest()[:16]
            target = cache_dir() / "kernels" / f"int8_mm_avx2_{digest}.so"
            if not target.exists():
                _build(target)
            lib = ctypes.CDLL(str(target))
            fn = lib.cf_int8_mm
            fn.restype = None
            fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 3
            lin = lib.cf_int8_linear
            lin.restype = ctypes.c_int
            ptr, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
            lin.argtypes = [ptr, ctypes.c_int, *[ptr] * 7, i64, i64, i64, f32, f32]
        except (OSError, subprocess.SubprocessError, AttributeError) as exc:
            logger.warning("int8 kernel unavailable (%s); using bitsandbytes' matmul", exc)
            lib = None
        _loaded["lib"] = lib
        return lib


def avx2_int8_matmul(fallback: Any) -> Any:
    """A ``matmul(a, b) -> a @ b.T`` (int8 in, int32 out) running the compiled kernel for
    inputs of up to :data:`MAX_ROWS` rows and ``fallback`` otherwise; ``None`` when the kernel
    is switched off, the CPU lacks AVX2 or the kernel cannot be built."""
    if not kernel_enabled() or not _cpu_has_avx2():
        return None
    lib = _library()
    if lib is None:
        return None
    import torch

    fn = lib.cf_int8_mm

    def matmul(a: Any, b: Any) -> Any:
        rows = a.shape[0]
        if rows > MAX_ROWS or a.dtype != torch.int8 or b.dtype != torch.int8:
            return fallback(a, b)
        a = a.contiguous()
        b = b.contiguous()
        n, k = b.shape
        out = torch.empty((rows, n), dtype=torch.int32)
        fn(a.data_ptr(), b.data_ptr(), out.data_ptr(), rows, n, k)
        return out

    return matmul


_scratch = threading.local()


def _scratch_ptr(nbytes: int) -> int:
    """A per-thread scratch buffer of at least ``nbytes`` (kept and grown between calls)."""
    import torch

    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.numel() < nbytes:
        buf = _scratch.buf = torch.empty(max(nbytes, 1 << 16), dtype=torch.uint8)
    return int(buf.data_ptr())


def avx2_int8_linear() -> Any:
    """``linear(x2d, weight, scb, threshold, dequant) -> out or None``: a whole LLM.int8() linear
    layer without bias (quantization, int8 matmul, dequantization, the cast to the input's
    dtype; bit-identical to bitsandbytes' float operations) in one call, for bfloat16 or
    float32 inputs of up to :data:`MAX_ROWS` rows without outliers. ``None`` from it means:
    take the general path. The function itself is ``None`` where :func:`avx2_int8_matmul`
    would be."""
    if not kernel_enabled() or not _cpu_has_avx2():
        return None
    lib = _library()
    if lib is None:
        return None
    import torch

    fn = lib.cf_int8_linear
    bf16 = torch.bfloat16
    f32 = torch.float32

    def linear(x: Any, weight: Any, scb: Any, threshold: float, dequant: float) -> Any:
        rows, k = x.shape
        dtype = x.dtype
        if rows > MAX_ROWS or (dtype != bf16 and dtype != f32) or scb.dtype != f32:
            return None
        if not (weight.is_contiguous() and scb.is_contiguous()) or weight.dtype != torch.int8:
            return None
        if not x.is_contiguous():
            x = x.contiguous()
        n = weight.shape[0]
        out = torch.empty((rows, n), dtype=dtype)
        # scratch: q (rows*k int8) | acc (rows*n int32) | xf (rows*k f32) | stats (rows f32)
        q_bytes = (rows * k + 63) // 64 * 64
        acc_bytes = (rows * n * 4 + 63) // 64 * 64
        xf_bytes = (rows * k * 4 + 63) // 64 * 64
        base = _scratch_ptr(q_bytes + acc_bytes + xf_bytes + rows * 4)
        failed = fn(
            x.data_ptr(),
            1 if dtype == bf16 else 0,
            weight.data_ptr(),
            scb.data_ptr(),
            out.data_ptr(),
            base,
            base + q_bytes,
            base + q_bytes + acc_bytes,
            base + q_bytes + acc_bytes + xf_bytes,
            rows,
            n,
            k,
            threshold,
            dequant,
        )
        return None if failed else out

    return linear
