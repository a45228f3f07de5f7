"""The kick step (harness/steps/kick.py): its schema and the model's
prediction of the rescheduling IPIs it sends (docs/ipi-types.md: +20 on the
kicked CPU in 12 of 14 rounds of 20, +21 in 2)."""
from __future__ import annotations

import pytest

from harness.core.errors import InputError
from harness.model import Features, predict
from harness.model.expect import Range
from harness.model.features import RESCHED_ROW
from harness.model.prediction import HANG, OK, REFUSED
from harness.scenario.parse import as_steps

RISCV = Features.riscv_6_12()


def claims_of(pred) -> dict:
    return {cid: expected for cid, _desc, expected in pred.claims()}


def test_kicks_predict_the_rescheduling_ipis_of_the_kicked_cpu() -> None:
    run = predict([{"kick": {"cpu": 3, "count": 1}, "name": "start"}, {"snapshot": "before"},
                   {"kick": {"cpu": 3, "count": 20}, "name": "k"}, {"snapshot": "after"}], RISCV, cpus=4)
    k = run.prediction("k")
    c = claims_of(k)
    assert c["k:outcome"] == OK
    assert k.counters[RESCHED_ROW][3] == Range(20, 22)
    # the first kick of a CPU also moves a task onto it: more noise allowed
    assert run.prediction("start").counters[RESCHED_ROW][3] == Range(1, 1 + 2 + 5)
    # between snapshots the row is noisy: the claim is the lower bound
    assert run.between("before", "after")[RESCHED_ROW][3] == Range(20, None)
    # the other CPUs get no claim beyond noise
    assert run.between("before", "after")[RESCHED_ROW][0] == Range(0, None)


def test_without_kicks_the_model_claims_no_reschedules() -> None:
    run = predict([{"snapshot": "before"}, {"sleep": 1}, {"snapshot": "after"}], RISCV, cpus=4)
    assert run.between("before", "after")[RESCHED_ROW][3] == Range(0, None)


def test_a_kick_to_an_offline_cpu_is_refused() -> None:
    run = predict([{"hotplug": {"cpu": 3, "online": False}}, {"kick": {"cpu": 3}, "name": "k"}], RISCV, cpus=4)
    assert claims_of(run.prediction("k"))["k:outcome"] == REFUSED


def test_a_kick_to_a_cpu_with_interrupts_off_hangs() -> None:
    run = predict([{"lkdtm": {"crash": "HARDLOCKUP", "cpu": 3}}, {"kick": {"cpu": 3}, "name": "k"}],
                  RISCV, cpus=4)
    assert claims_of(run.prediction("k"))["k:outcome"] == HANG


def test_a_kick_shared_with_a_load_has_no_lower_bound() -> None:
    run = predict([{"load": {"cpu": 3}}, {"sleep": 0.5}, {"kick": {"cpu": 3, "count": 10}, "name": "k"}],
                  RISCV, cpus=4)
    assert run.prediction("k").counters[RESCHED_ROW][3] == Range(0, 10 + 2 + 5)


def test_a_kick_from_the_kicked_cpu_itself_sends_no_ipi() -> None:
    run = predict([{"kick": {"cpu": 3, "count": 5, "sender": 3}, "name": "k"}], RISCV, cpus=4)
    assert run.prediction("k").counters[RESCHED_ROW][3] == Range(0, 5 + 2 + 5)


@pytest.mark.parametrize("args, message", [
    ({"cpu": 3, "count": 0}, "count from 1 to 1000"),
    ({"cpu": 3, "count": 1001}, "count from 1 to 1000"),
    ({"cpu": 4}, "out of range"),
    ({"cpu": 3, "sender": 9}, "out of range"),
    ({"count": 3}, "cpu"),
])
def test_bad_kick_arguments_are_refused_before_boot(args: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        as_steps([{"kick": args}], cpus=4)
