"""Hypothesis settings for the fuzz tests: 10,000 cases per target by default, deterministic.

``CF_LLAMA2_FUZZ_CASES`` raises (or lowers) the count for a nightly-style run, e.g.
``CF_LLAMA2_FUZZ_CASES=200000 python -m pytest tests/unit/fuzz``. Each example carries
``CASES_PER_EXAMPLE`` inputs, so the count of cases is ``max_examples * CASES_PER_EXAMPLE``.
"""

from __future__ import annotations

import os

import pytest

hypothesis = pytest.importorskip("hypothesis")

CASES = int(os.environ.get("CF_LLAMA2_FUZZ_CASES", "10000"))
CASES_PER_EXAMPLE = 50

hypothesis.settings.register_profile(
    "cf-llama2-fuzz",
    max_examples=max(1, CASES // CASES_PER_EXAMPLE),
    deadline=None,
    derandomize=True,  # the same cases on every run: the suite stays deterministic
    database=None,  # nothing written next to the sources
    suppress_health_check=list(hypothesis.HealthCheck),
)
FUZZ = hypothesis.settings.get_profile("cf-llama2-fuzz")
