"""What a check says: its verdict, where it comes from, and the result the
outputs write (checks.py re-exports these for the layers above)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PASS, FAIL, SKIP, ERROR = "pass", "fail", "skip", "error"
# A scenario that passed only on a retry (a boot where a CPU missed bring-up,
# or a QEMU that died of someone else's signal): both attempts' evidence is
# kept, and `run` exits 0 for it unless --flaky fail.
FLAKY = "flaky"
# A claim the kernel's output could not be compared with: shown with its
# reason, counted neither as passed nor as failed.
NOT_COMPARED = "not-compared"

# Where a check comes from: the scenario's own expectations (and the
# implicit ones every scenario has: the guest boots all CPUs, answers and
# does not crash), or the reference model's claims.
EXPECTATION, MODEL = "expectation", "model"


@dataclass
class CheckResult:
    name: str
    verdict: str
    expected: str
    observed: str
    step: str | None = None
    message: str = ""
    origin: str = EXPECTATION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
