"""model: everything the reference model predicts for the scenario's steps
holds. Written `model: true`; expect/crosscheck.py compares the model's
claims with the kernel, claim by claim, so there is no evaluation here."""
from __future__ import annotations

from typing import Any, Mapping

from harness.expect.kind import ExpectationKind


def expected(a: Mapping[str, Any]) -> str:
    return "everything the reference model predicts for these steps holds"


KIND = ExpectationKind(
    kind="model",
    fields={},
    expected=expected,
    evaluate=None,
    switch=True,
)
