"""harness/model: unit tests of specific predictions (grounded in the kernel
source and docs/measurements.md) and property tests of the model's invariants."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.model import (
    BACKTRACE_ROW,
    CALL_ROW,
    KGDB_ROW,
    Features,
    Model,
    Range,
    explain,
    parse_available,
    predict,
    satisfies,
)
from harness.model.features import ARM64, ARM64_PSEUDO_NMI, RISCV64
from harness.model.kdb_cpus import available_cpus
from harness.model.prediction import HANG, KDB_HELD, MUST, NOT_REACHED, OK, REFUSED
from harness.parsers.backtrace import FALLBACK, FALLBACK_IDLE, FULL, IDLE
from harness.scenario.parse import as_steps as expand
from harness.scenario.parse import make_step

RISCV = Features.riscv_6_12()
REVERTED = Features.riscv_6_12(backtrace_ipi=False, kgdb_roundup_ipi=False, sbi_ipi_early=False)
ARM = Features.arm64_pseudo_nmi()


def allows(expected, *observed) -> bool:
    """Every observed value is one the model allows (its expectations name
    sets: an unloaded CPU may be idle or running the console's tasks)."""
    return all(satisfies(expected, o) for o in observed)


def claims_of(pred) -> dict:
    return {cid: expected for cid, _desc, expected in pred.claims()}


def must(pred) -> list[str]:
    return [r.pattern for r in pred.console_lines if r.when == MUST]


def may(pred) -> list[str]:
    return [r.pattern for r in pred.console_lines]


def hardlockup(cpu):
    return {"name": f"hl{cpu}", "lkdtm": {"crash": "HARDLOCKUP", "cpu": cpu}}


def sysrq_l(cpu=1, name="l", via="proc"):
    return {"name": name, "sysrq": {"key": "l", "cpu": cpu, "via": via}}


def kdb(cpu=2, name="k", commands=("cpu",), go_twice=False):
    return {"name": name, "kdb": {"cpu": cpu, "commands": list(commands), "go_twice": go_twice}}


# ============================================================== sysrq-l
def test_sysrq_l_from_cpu1_on_four_idle_cpus():
    run = predict([{"snapshot": "before"}, sysrq_l(1), {"snapshot": "after"}], RISCV, cpus=4)
    c = claims_of(run.prediction("l"))
    # docs/measurements.md §backtrace-counts: row rose by exactly 1 on CPUs 0, 2, 3 and by 0 on CPU 1
    assert [c[f"l:counter:{BACKTRACE_ROW}:cpu{n}"] for n in range(4)] == [1, 0, 1, 1]
    assert c["l:backtrace:mechanism"] == "ipi"
    assert c["l:backtrace:sender"] == 1
    assert c["l:backtrace:targets"] == [0, 2, 3]
    assert c["l:backtrace:form:cpu1"] == FULL
    # Unloaded CPUs: "skipped: idling", or a full trace if a task ran there (measured).
    for n in (0, 2, 3):
        assert allows(c[f"l:backtrace:form:cpu{n}"], IDLE, FULL)
        assert not allows(c[f"l:backtrace:form:cpu{n}"], None)
    assert c["l:backtrace:wait"] is False
    assert c["l:outcome"] == OK
    # no other IPI-sending action: the KGDB row stays put everywhere
    assert all(c[f"l:counter:{KGDB_ROW}:cpu{n}"] == 0 for n in range(4))
    patterns = must(run.prediction("l"))
    assert any(re.search(p, "Sending NMI from CPU 1 to CPUs 0,2-3:") for p in patterns)
    between = run.between("before", "after")
    assert [between[BACKTRACE_ROW][n] for n in range(4)] == [Range(1, 1), Range(0, 0), Range(1, 1), Range(1, 1)]


def test_sysrq_l_with_cpu2_offline():
    steps = [{"name": "off", "hotplug": {"cpu": 2, "online": False}}, {"snapshot": "a"}, sysrq_l(1),
             {"snapshot": "b"}]
    run = predict(steps, RISCV, cpus=4)
    c = claims_of(run.prediction("l"))
    assert c["l:backtrace:targets"] == [0, 3]
    assert c["l:backtrace:form:cpu2"] is None
    assert f"l:counter:{BACKTRACE_ROW}:cpu2" not in c          # no column for CPU 2
    assert claims_of(run.prediction("2-snapshot"))["2-snapshot:snapshot:columns"] == [0, 1, 3]
    assert c["l:backtrace:wait"] is False
    assert any(re.search(p, "Sending NMI from CPU 1 to CPUs 0,3:") for p in must(run.prediction("l")))
    assert set(run.between("a", "b")[BACKTRACE_ROW]) == {0, 1, 3}


def test_sysrq_l_with_cpu3_hard_locked():
    steps = [hardlockup(3), sysrq_l(1), {"name": "wait", "sleep": {"seconds": 30}}]
    run = predict(steps, RISCV, cpus=4)
    p = run.prediction("l")
    c = claims_of(p)
    assert c["l:backtrace:form:cpu3"] is None                   # prints nothing
    assert c[f"l:counter:{BACKTRACE_ROW}:cpu3"] == 0           # counter stayed put
    assert c["l:backtrace:wait"] is True                        # the 10 s wait
    assert p.end.lo - p.start.hi >= 9.9 - 1.5
    # every row of a CPU with interrupts off stays put
    assert c[f"l:counter:{CALL_ROW}:cpu3"] == 0
    assert [c[f"l:counter:{BACKTRACE_ROW}:cpu{n}"] for n in (0, 1, 2)] == [1, 0, 1]
    # the buddy detector (CPU 2 checks CPU 3) must have reported it after 30 s
    later = run.prediction("wait")
    line = "watchdog: Watchdog detected hard LOCKUP on cpu 3"
    assert any(re.search(pat, line) for pat in must(later))
    assert any(re.search(pat, "Sending NMI from CPU 2 to CPUs 3:") for pat in may(later))
    assert not any(re.search(pat, line) for pat in must(p))   # not certain yet within 10 s


def test_reverted_kernel_falls_back_to_function_calls():
    run = predict([{"snapshot": "a"}, sysrq_l(1), {"snapshot": "b"}], REVERTED, cpus=4)
    c = claims_of(run.prediction("l"))
    assert c["l:backtrace:mechanism"] == "fallback"
    assert c["l:backtrace:form:cpu1"] == FALLBACK
    for n in (0, 2, 3):
        assert allows(c[f"l:backtrace:form:cpu{n}"], FALLBACK_IDLE, FALLBACK)
    assert c["l:backtrace:wait"] is False
    assert not any(BACKTRACE_ROW in cid or KGDB_ROW in cid for cid, _, _ in run.claims()
                   if ":counter:" in cid)
    assert [c.get(f"l:counter:{CALL_ROW}:cpu{n}") for n in range(4)] == [{"at_least": 1}, None,
                                                                         {"at_least": 1}, {"at_least": 1}]
    s = claims_of(run.prediction("1-snapshot"))
    assert s[f"1-snapshot:snapshot:row:{BACKTRACE_ROW}"] is False
    assert s[f"1-snapshot:snapshot:row:{KGDB_ROW}"] is False


def test_reverted_kernel_second_fallback_blocks_on_locked_csd():
    steps = [hardlockup(3), sysrq_l(1, "l1"), sysrq_l(1, "l2"), sysrq_l(2, "l3")]
    run = predict(steps, REVERTED, cpus=4)
    first, second, third = (claims_of(run.prediction(n)) for n in ("l1", "l2", "l3"))
    assert first["l1:backtrace:form:cpu3"] is None
    # CPU 1's csd for CPU 3 is still locked: csd_lock() spins before any IPI is sent
    assert second["l2:backtrace:form:cpu0"] == {"one_of": [FALLBACK, FALLBACK_IDLE, None]}
    assert second["l2:backtrace:form:cpu3"] is None
    assert run.final.cpus[1].activity.value == "softlockup"
    # another sender has its own csd: not blocked
    assert allows(third["l3:backtrace:form:cpu0"], FALLBACK_IDLE)
    assert not allows(third["l3:backtrace:form:cpu0"], None)


def test_arm64_pseudo_nmi_backtraces_a_stuck_cpu():
    steps = [hardlockup(3), sysrq_l(1), kdb(2, commands=["cpu"])]
    run = predict(steps, ARM, cpus=4)
    c = claims_of(run.prediction("l"))
    assert c["l:backtrace:form:cpu3"] == FULL
    assert c[f"l:counter:{BACKTRACE_ROW}:cpu3"] == 1
    assert c["l:backtrace:wait"] is False
    # idle CPUs answer with either form on arm64 (docs/measurements.md §idle-forms)
    assert c["l:backtrace:form:cpu0"] == {"one_of": [FULL, IDLE]}
    k = claims_of(run.prediction("k"))
    assert allows(k["k:kdb:available"], "0-1(-), 2-3")         # the round-up NMI reaches CPU 3
    assert not any("D" in a for a in k["k:kdb:available"]["one_of"])
    assert k["k:kdb:go_refused"] is False


def test_same_scenario_without_pseudo_nmi_behaves_like_riscv():
    f = Features.arm64_pseudo_nmi(arch=ARM64)
    run = predict([hardlockup(3), sysrq_l(1)], f, cpus=4)
    c = claims_of(run.prediction("l"))
    assert c["l:backtrace:form:cpu3"] is None and c["l:backtrace:wait"] is True


def test_sysrq_via_break_runs_on_the_uart_cpu_which_moves_when_offlined():
    run = predict([sysrq_l(None, "b1", via="break"),
                   {"name": "off", "hotplug": {"cpu": 0, "online": False}},
                   sysrq_l(None, "b2", via="break")], RISCV, cpus=4)
    assert claims_of(run.prediction("b1"))["b1:backtrace:sender"] == 0
    assert claims_of(run.prediction("off"))["off:hotplug:status"] == 0   # RISC-V CPU 0 is hotpluggable
    assert claims_of(run.prediction("b2"))["b2:backtrace:sender"] == 1


def test_sysrq_break_is_lost_when_the_uart_cpu_has_interrupts_off():
    run = predict([hardlockup(0), sysrq_l(None, "b", via="break")], RISCV, cpus=2)
    assert claims_of(run.prediction("b"))["b:outcome"] == "no-effect"


def test_unpinned_sysrq_merges_the_possible_senders():
    run = predict([sysrq_l(None)], RISCV, cpus=2)
    c = claims_of(run.prediction("l"))
    assert c["l:backtrace:sender"] == {"one_of": [0, 1]}
    assert c["l:backtrace:form:cpu0"] == {"one_of": [FULL, IDLE]}
    assert c[f"l:counter:{BACKTRACE_ROW}:cpu0"] == {"between": [0, 1]}


def test_sysrq_l_may_be_swallowed_while_the_buddy_backtraces():
    # 10 s after the lockup the buddy's own trigger_single_cpu_backtrace may hold backtrace_flag
    run = predict([hardlockup(3), {"sleep": 12}, sysrq_l(1)], RISCV, cpus=4)
    p = run.prediction("l")
    assert p.backtrace.swallowed
    assert claims_of(p)["l:backtrace:form:cpu1"] == {"one_of": [FULL, None]}


# ============================================================== kdb
def test_kdb_from_cpu2_on_idle_cpus():
    run = predict([{"snapshot": "a"}, kdb(2, commands=["btc"]), {"snapshot": "b"}], RISCV, cpus=4)
    c = claims_of(run.prediction("k"))
    assert allows(c["k:kdb:available"], "0-1(-), 2, 3(-)")           # seed 983f12149942's own output
    assert c["k:kdb:prompt"] == "[2]kdb> "
    assert c["k:kdb:go_refused"] is False and c["k:kdb:resumed"] is True
    assert c["k:kdb:unresponsive"] == []
    assert [c[f"k:counter:{KGDB_ROW}:cpu{n}"] for n in range(4)] == [1, 1, 0, 1]
    assert run.between("a", "b")[KGDB_ROW][2] == Range(0, 0)


def test_kdb_with_cpu3_hard_locked_needs_go_twice():
    run = predict([hardlockup(3), kdb(2, commands=["btc"], go_twice=True), {"snapshot": "s"}], RISCV, cpus=4)
    p = run.prediction("k")
    c = claims_of(p)
    assert allows(c["k:kdb:available"], "0-1(-), 2, 3(D)")
    assert c["k:kdb:go_refused"] is True and c["k:kdb:resumed"] is True
    assert c["k:kdb:roundup_timeout"] is True
    assert c[f"k:counter:{KGDB_ROW}:cpu3"] == 0
    assert "WARNING: no task for cpu 3" in p.kdb.lines
    assert any(re.search(pat, "type go a second time if you really want to continue") for pat in must(p))
    assert claims_of(run.prediction("3-snapshot"))["3-snapshot:outcome"] == OK


def test_kdb_refused_go_without_go_twice_leaves_the_machine_in_kdb():
    run = predict([hardlockup(3), kdb(2), {"snapshot": "s"}, sysrq_l(1)], RISCV, cpus=4)
    assert run.prediction("k").outcome == {KDB_HELD}
    assert run.prediction("3-snapshot").outcome == {NOT_REACHED}
    assert run.prediction("l").outcome == {NOT_REACHED}


def test_kdb_step_defaults_follow_the_harness():
    # harness/guest/console.py kdb_go answers a refused go with a second go; commands default to btc
    steps = [hardlockup(3), {"sleep": 1}, {"snapshot": "before"},
             {"name": "debug", "kdb": {"cpu": 1}, "timeout": 60}, {"snapshot": "after"}]
    run = predict(steps, RISCV, cpus=4)
    c = claims_of(run.prediction("debug"))
    assert allows(c["debug:kdb:available"], "0(-), 1, 2(-), 3(D)")
    assert c["debug:kdb:go_refused"] is True and c["debug:kdb:resumed"] is True
    assert [run.between("before", "after")[KGDB_ROW][n] for n in range(4)] == [
        Range(1, 1), Range(0, 0), Range(1, 1), Range(0, 0)]


def test_hung_task_and_spinlockup():
    run = predict([{"lkdtm": {"crash": "HUNG_TASK"}}, {"name": "w", "sleep": 25},
                   {"lkdtm": {"crash": "SPINLOCKUP", "cpu": 1}}, {"name": "s2", "lkdtm": {"crash": "SPINLOCKUP", "cpu": 2}},
                   {"name": "l", "sysrq": {"key": "l", "cpu": 0}}], RISCV, cpus=4)
    assert any(re.search(p, "INFO: task sh:88 blocked for more than 10 seconds.") for p in must(run.prediction("w")))
    assert run.final.cpus[1].activity.value == "idle"
    assert run.final.cpus[2].activity.value == "softlockup"
    assert claims_of(run.prediction("l"))["l:backtrace:form:cpu2"] == FULL


def test_kdb_generic_roundup_uses_function_calls():
    f = Features.riscv_6_12(kgdb_roundup_ipi=False)
    run = predict([hardlockup(3), kdb(2, go_twice=True, name="k1"), kdb(1, go_twice=True, name="k2")], f, cpus=4)
    c = claims_of(run.prediction("k1"))
    assert allows(c["k1:kdb:available"], "0-1(-), 2, 3(D)")
    assert c[f"k1:counter:{CALL_ROW}:cpu0"] == {"at_least": 1}
    assert not any(KGDB_ROW in cid for cid in c)
    assert 3 in run.final.rounding_up                          # kgdb_info[3].rounding_up stays set
    assert allows(claims_of(run.prediction("k2"))["k2:kdb:available"], "0(-), 1, 2(-), 3(D)")


def test_kdb_marks_busy_cpus_without_marker_and_offline_middle_cpu_with_F():
    steps = [{"load": {"cpu": 3}}, {"hotplug": {"cpu": 1, "online": False}}, kdb(0)]
    c = claims_of(predict(steps, RISCV, cpus=5).prediction("k"))
    assert allows(c["k:kdb:available"], "0, 1(F), 2(-), 3, 4(-)")


def test_kdb_available_cpus_port():
    assert available_cpus(["-", "-", " ", "-"], 8) == "0-1(-), 2, 3(-)"
    assert available_cpus(["-", "-", " ", "D"], 8) == "0-1(-), 2, 3(D)"
    assert available_cpus(["-", " ", "F", "-"], 8) == "0(-), 1, 2(F), 3(-)"
    assert available_cpus(["-", " ", "-", "F"], 8) == "0(-), 1, 2(-)"     # trailing offline left out
    assert available_cpus(["F", " ", "-"], 8) == "0(F), 1, 2(-)"
    assert available_cpus([" "] * 8, 8) == "0-7"
    assert parse_available("0-1(-), 2, 3(D)") == {0: "-", 1: "-", 2: " ", 3: "D"}
    assert parse_available("0-1(-) 2") is None


# ============================================================== hotplug
def test_offlining_the_last_cpu_is_refused():
    steps = [{"hotplug": {"cpu": 1, "online": False}}, {"name": "last", "hotplug": {"cpu": 0, "online": False}}]
    run = predict(steps, RISCV, cpus=2)
    p = run.prediction("last")
    assert p.outcome == {REFUSED}
    assert claims_of(p)["last:hotplug:status"] == {"at_least": 1}
    assert run.final.online() == [0]


def test_online_latency_class_depends_on_3908ba2e0b24():
    steps = [{"hotplug": {"cpu": 2, "online": False}}, {"name": "on", "hotplug": {"cpu": 2, "online": True}}]
    fixed = claims_of(predict(steps, RISCV).prediction("on"))
    assert fixed["on:hotplug:latency_class"] == "fast"
    assert satisfies(fixed["on:hotplug:latency_ms"], 100) and not satisfies(fixed["on:hotplug:latency_ms"], 1050)
    reverted = claims_of(predict(steps, REVERTED).prediction("on"))
    assert reverted["on:hotplug:latency_class"] == "may-stall"
    assert "on:hotplug:latency_ms" not in reverted
    unknown = Features.riscv_6_12(sbi_ipi_early=None)
    assert claims_of(predict(steps, unknown).prediction("on"))["on:hotplug:latency_class"] == "may-stall"


def test_offlining_while_a_cpu_is_stuck_hangs():
    run = predict([{"lkdtm": {"crash": "SOFTLOCKUP", "cpu": 3}},
                   {"name": "off", "hotplug": {"cpu": 1, "online": False}}, {"snapshot": "s"}], RISCV)
    assert run.prediction("off").outcome == {HANG}
    assert run.prediction("3-snapshot").outcome == {NOT_REACHED}


def test_offlining_a_loaded_cpu_breaks_the_load_affinity():
    steps = [{"load": {"cpu": 2}}, {"hotplug": {"cpu": 2, "online": False}}, kdb(0)]
    run = predict(steps, RISCV, cpus=4)
    avail = claims_of(run.prediction("k"))["k:kdb:available"]
    assert isinstance(avail, dict)
    assert {"0, 1(-), 2(F), 3(-)", "0, 1(-), 2(F), 3", "0-1, 2(F), 3(-)"} <= set(avail["one_of"])
    assert any(re.search(r.pattern, "process 77 (sh) no longer affine to cpu2")
               for r in run.predictions[1].console_lines)


# ============================================================== lockups and reports
def test_soft_lockup_report_and_answers():
    run = predict([{"lkdtm": {"crash": "SOFTLOCKUP", "cpu": 3}}, sysrq_l(1), kdb(2),
                   {"name": "wait", "sleep": {"seconds": 30}}], RISCV, cpus=4)
    c = claims_of(run.prediction("l"))
    assert c["l:backtrace:form:cpu3"] == FULL and c["l:backtrace:wait"] is False
    assert allows(claims_of(run.prediction("k"))["k:kdb:available"], "0-1(-), 2-3")
    assert any(re.search(p, "watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [sh:97]")
               for p in must(run.prediction("wait")))


def test_smp_call_lockup_csd_report_matches_the_measured_line():
    f = Features.riscv_6_12(csd_lock_debug=True)
    run = predict([{"name": "x", "lkdtm": {"crash": "SMP_CALL_LOCKUP", "cpu": 1}},
                   {"name": "wait", "sleep": {"seconds": 10}},
                   {"name": "off", "hotplug": {"cpu": 2, "online": False}}], f, cpus=4)
    measured = ("csd: Detected non-responsive CSD lock (#1) on CPU#1, waiting 5000000100 ns for CPU#00 "
                "__lkdtm_SMP_CALL_LOCKUP+0x0/0xe(0x0).")
    assert any(re.search(p, measured) for p in must(run.prediction("wait")))
    assert any(re.search(p, "csd: CSD lock (#1) handling this request.") for p in must(run.prediction("wait")))
    assert run.final.cpus[0].irqs_off and run.final.cpus[1].activity.value == "softlockup"
    assert run.prediction("off").outcome == {HANG}           # cpus_read_lock() held by the writer
    no_debug = predict([{"lkdtm": {"crash": "SMP_CALL_LOCKUP", "cpu": 1}}, {"name": "w", "sleep": 10}], RISCV)
    assert not any("csd:" in r.pattern for r in no_debug.prediction("w").console_lines)


def test_hard_lockup_needs_a_buddy():
    steps = [{"hotplug": {"cpu": 1, "online": False}}, hardlockup(0), {"name": "w", "sleep": 60}]
    run = predict(steps, RISCV, cpus=2)
    assert not any("hard LOCKUP" in r.pattern for p in run.predictions for r in p.console_lines)


def test_lkdtm_on_offline_cpu_is_refused_and_panic_ends_the_run():
    run = predict([{"hotplug": {"cpu": 3, "online": False}}, {"name": "x", "lkdtm": {"crash": "HARDLOCKUP", "cpu": 3}},
                   {"name": "p", "lkdtm": {"crash": "PANIC", "cpu": 0}}, {"snapshot": "s"}], RISCV)
    assert run.prediction("x").outcome == {REFUSED}
    assert any(re.search(p, "Kernel panic - not syncing: dumptest") for p in must(run.prediction("p")))
    assert run.prediction("4-snapshot").outcome == {NOT_REACHED}


def test_panic_without_kgdb_reports_failed_stop_of_a_stuck_cpu():
    f = Features.riscv_6_12(kgdb_attached=False)
    run = predict([hardlockup(3), {"name": "p", "lkdtm": {"crash": "PANIC", "cpu": 1}}], f)
    assert any(re.search(p, "SMP: failed to stop secondary CPUs 1,3") for p in must(run.prediction("p")))


# ============================================================== features, steps, claims
def test_features_reference():
    # The kernel a recipe declares, never what the kernel under test shows:
    # what it lacks comes from the recipe's model.without, not from IPI rows.
    cfg = {"CONFIG_SMP": "y", "CONFIG_KGDB": "y", "CONFIG_KGDB_KDB": "y", "CONFIG_KGDB_SERIAL_CONSOLE": "y",
           "CONFIG_CSD_LOCK_WAIT_DEBUG": "y", "CONFIG_HOTPLUG_CPU": "y", "CONFIG_HARDLOCKUP_DETECTOR": "y",
           "CONFIG_SOFTLOCKUP_DETECTOR": "y", "CONFIG_NR_CPUS": "8", "CONFIG_RISCV": "y"}
    f = Features.reference(cfg, cmdline="console=ttyS0 kgdboc=ttyS0 csdlock_debug=1",
                           without=["983f12149942", "3908ba2e0b24"])
    assert f.backtrace_ipi and not f.kgdb_roundup_ipi and f.sbi_ipi_early is False
    assert f.csd_lock_debug and f.kgdb_attached and f.arch is RISCV64
    assert Features.reference(cfg, cmdline="console=ttyS0").kgdb_attached is False
    assert Features.reference(cfg).sbi_ipi_early is True
    assert Features.reference(cfg, without=[]).sbi_ipi_early is True
    assert Features.reference({**cfg, "CONFIG_HOTPLUG_CPU": "n"}).hotplug is False
    arm = Features.reference({**cfg, "CONFIG_ARM64": "y", "CONFIG_ARM64_PSEUDO_NMI": "y"}, arch="arm64",
                             cmdline=["irqchip.gicv3_pseudo_nmi=1", "kgdboc=ttyAMA0"])
    assert arm.arch is ARM64_PSEUDO_NMI and arm.kgdb_roundup_ipi
    with pytest.raises(ValueError, match="unknown commit"):
        Features.reference(cfg, without=["0123456789ab"])
    assert Features.riscv_6_12().ipi_rows()[-2:] == [BACKTRACE_ROW, KGDB_ROW]
    assert REVERTED.reverted() == ["f15c21a3de1b", "983f12149942", "3908ba2e0b24"]


def test_expand_repeat():
    steps = expand([{"name": "r", "repeat": {"cpus": [1, 3], "steps": [
        {"hotplug": {"cpu": "{cpu}", "online": False}},
        {"name": "s{i}", "shell": {"command": "echo cpu{cpu} round {i}"}}]}},
        {"name": "t", "repeat": {"times": 2, "steps": [{"sleep": 1}]}}])
    # One naming with scenario files: "<name>#<round>[@cpu<n>]", default
    # names numbered in source order so that every round shares the base.
    assert [s.name for s in steps] == ["1-hotplug#0@cpu1", "s0#0@cpu1", "1-hotplug#1@cpu3", "s1#1@cpu3",
                                       "3-sleep#0", "3-sleep#1"]
    assert steps[2].args == {"cpu": 3, "online": False}
    assert steps[3].args["command"] == "echo cpu3 round 1"
    with pytest.raises(ValueError):
        predict([{"repeat": {"times": 1, "steps": [{"hotplug": {"cpu": "{cpu}", "online": False}}]}}])
    nested = expand([{"name": "o", "repeat": {"times": 2, "steps": [
        {"name": "n", "repeat": {"cpus": [2], "steps": [{"load": {"cpu": "{cpu}", "seconds": 1}}]}}]}}])
    assert [s.name for s in nested] == ["1-load#0#0@cpu2", "1-load#1#0@cpu2"]
    assert nested[0].args == {"cpu": 2, "seconds": 1}


def test_satisfies():
    assert satisfies(3, 3) and not satisfies(3, 4)
    assert satisfies({"at_least": 1}, 5) and not satisfies({"at_least": 1}, 0)
    assert satisfies({"between": [0, 1]}, 1) and not satisfies({"between": [0, 1]}, 2)
    assert satisfies({"one_of": ["idle", None]}, None) and not satisfies({"one_of": ["idle"]}, "full")
    assert satisfies({"at_most": 500}, 120) and not satisfies({"at_most": 500}, 1050)
    assert not satisfies({"at_least": 0}, True)


def test_claims_are_unique_and_json():
    run = predict([{"snapshot": "a"}, hardlockup(3), sysrq_l(1), kdb(2, go_twice=True), {"snapshot": "b"}])
    ids = [cid for cid, _, _ in run.claims()]
    assert len(ids) == len(set(ids))
    json.dumps(run.to_json())
    json.dumps(run.claims())


def test_explain_text():
    text = explain([{"snapshot": "a"}, sysrq_l(1), kdb(2)], RISCV, 4)
    assert "Sending NMI from CPU 1 to CPUs 0,2-3:" in text
    assert "'0-1(-), 2, 3(-)'" in text
    text = explain([sysrq_l(1)], REVERTED, 4)
    assert "fallback" in text and "f15c21a3de1b" in text


def test_step_objects_and_model_stepping():
    m = Model(RISCV, cpus=3)
    p = m.step(make_step("sysrq", "x", key="l", cpu=2))
    assert p.backtrace.sender == {2}
    with pytest.raises(ValueError):
        m.step({"repeat": {"times": 1, "steps": []}})
    with pytest.raises(ValueError):
        Model(RISCV, cpus=9)


# ============================================================== properties
CPUS = st.integers(min_value=1, max_value=6)
FEATURES = st.sampled_from([RISCV, REVERTED, ARM, Features.riscv_6_12(kgdb_roundup_ipi=False, csd_lock_debug=True),
                            Features.riscv_6_12(backtrace_ipi=False, csd_lock_debug=True)])


@st.composite
def scenarios(draw):
    ncpus = draw(CPUS)
    cpu = st.integers(min_value=0, max_value=ncpus - 1)
    step = st.one_of(
        st.builds(lambda c, on: {"hotplug": {"cpu": c, "online": on}}, cpu, st.booleans()),
        st.builds(lambda c, v: {"sysrq": {"key": "l", "cpu": c if v == "proc" else None, "via": v}},
                  st.one_of(st.none(), cpu), st.sampled_from(["proc", "proc", "break"])),
        st.builds(lambda c, cmds, twice: {"kdb": {"cpu": c, "commands": cmds, "go_twice": twice}},
                  cpu, st.sampled_from([["cpu"], ["btc"], []]), st.booleans()),
        st.builds(lambda c, s: {"load": {"cpu": c, "seconds": s}}, cpu,
                  st.one_of(st.none(), st.integers(min_value=1, max_value=30))),
        st.builds(lambda c, k: {"lkdtm": {"crash": k, "cpu": c}}, cpu,
                  st.sampled_from(["HARDLOCKUP", "SOFTLOCKUP", "SMP_CALL_LOCKUP", "WARNING", "WARNING"])),
        st.builds(lambda c: {"hotplug": {"cpu": c, "online": False}}, cpu),
        st.builds(lambda s: {"sleep": s}, st.integers(min_value=1, max_value=25)),
        st.just({"snapshot": "x"}),
    )
    raw = draw(st.lists(step, min_size=1, max_size=10))
    if ncpus > 2 and draw(st.booleans()):
        raw.insert(0, {"hotplug": {"cpu": draw(cpu), "online": False}})
    if ncpus > 1 and draw(st.booleans()):
        # make the interesting case common: a CPU stuck with interrupts off,
        # then backtraces and kdb sessions from another CPU
        stuck = draw(cpu)
        probe = draw(cpu.filter(lambda c: c != stuck))
        raw.insert(draw(st.integers(0, len(raw))), {"lkdtm": {"crash": "HARDLOCKUP", "cpu": stuck}})
        raw += [{"sysrq": {"key": "l", "cpu": probe, "via": "proc"}},
                {"kdb": {"cpu": probe, "commands": ["cpu"], "go_twice": True}}, {"snapshot": "x"}]
    steps = []
    labels = 0
    for i, s in enumerate(raw):
        s = dict(s)
        if "snapshot" in s:
            s = {"snapshot": f"s{labels}"}
            labels += 1
        s["name"] = f"st{i}"
        steps.append(s)
    return ncpus, steps


PROP = settings(max_examples=150, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _single(values):
    return next(iter(values)) if len(values) == 1 else None


@PROP
@given(scenarios(), FEATURES)
def test_property_model_invariants(scn, features):
    ncpus, steps = scn
    run = predict(steps, features, ncpus)
    preds = run.predictions
    assert len(preds) == len(steps)
    reached = True
    ids = set()
    for i, p in enumerate(preds):
        # once the machine is wedged, nothing more runs
        if not reached:
            assert p.outcome == {NOT_REACHED}
        if p.outcome == {NOT_REACHED}:
            reached = False
            continue
        # time moves forward, one step after the other
        assert p.end.lo >= p.start.lo and p.end.hi >= p.start.hi
        if i + 1 < len(preds):
            assert preds[i + 1].start == p.end
        # the online set never becomes empty
        assert p.online_after, p
        online = set(p.online_before)
        for cid, _, expected in p.claims():
            assert cid not in ids
            ids.add(cid)
            json.dumps(expected)
            m = re.fullmatch(r".*:counter:(.+):cpu(\d+)", cid)
            if m:
                row, cpu = m.group(1), int(m.group(2))
                assert row in features.ipi_rows()
                assert cpu in online and cpu in p.online_after
        for row in (BACKTRACE_ROW, KGDB_ROW):
            for cpu, r in p.counters.get(row, {}).items():
                if r.lo > 0 or (r.hi or 0) > 0:
                    # exact rows move only on online CPUs ...
                    assert cpu in online
            if row not in features.ipi_rows():
                assert not p.counters.get(row)
        if p.backtrace is not None:
            b = p.backtrace
            sender = _single(b.sender)
            for cpu, forms in b.forms.items():
                if cpu not in online:
                    assert forms == {None}          # never prints and offline
            if sender is not None:
                # ... and never on the sender (unless a detector backtraces it meanwhile)
                background = any("-bt" in r.key and f"cpu{sender}" in r.key for r in p.console_lines)
                if BACKTRACE_ROW in features.ipi_rows() and not background:
                    assert p.counters[BACKTRACE_ROW].get(sender, Range(0, 0)) == Range(0, 0)
                assert None not in b.forms[sender] or b.swallowed
            if b.mechanism == "ipi" and sender is not None and not b.swallowed:
                stuck = [c for c in online if c != sender and run.final.cpus[c].irqs_off
                         and run.final.cpus[c].stuck_step < i]
                if features.arch.nmi_ipis:
                    assert b.wait == {False}
                elif stuck:
                    assert b.wait == {True}
                    for c in stuck:
                        assert b.forms[c] == {None}
                        assert p.counters[BACKTRACE_ROW][c] == Range(0, 0)
                answered = [c for c in online if c != sender and None not in b.forms[c]]
                assert sum(p.counters[BACKTRACE_ROW][c].lo for c in answered) == len(answered)
        if p.kdb is not None:
            init = _single(p.kdb.cpu)
            top = max(online)
            for text in p.kdb.available:
                parsed = parse_available(text)
                assert parsed is not None
                # online CPUs, plus offline ones below the highest online CPU, marked (F)
                assert set(parsed) == online | {c for c in range(top) if c not in online}
                assert all((parsed[c] == "F") == (c not in online) for c in parsed)
                if init is not None:
                    assert parsed[init] == " "
                d = tuple(sorted(c for c, s in parsed.items() if s == "D"))
                assert d in p.kdb.unresponsive
                # without an NMI round-up a CPU with interrupts off is always (D)
                if not features.arch.nmi_ipis:
                    for c in online:
                        cpu = run.final.cpus[c]
                        if c != init and cpu.irqs_off and cpu.stuck_step < i:
                            assert parsed[c] == "D", (text, c)
            if init is not None and p.kdb.via != "oops":
                assert p.counters.get(KGDB_ROW, {}).get(init, Range(0, 0)) == Range(0, 0)
        if p.hotplug is not None and not p.hotplug.online and p.online_before == [p.hotplug.cpu]:
            assert p.outcome == {REFUSED}
    # a CPU with interrupts off since an earlier step moves no non-NMI counter
    for i, p in enumerate(preds):
        for cpu in p.comparable_cpus:
            c = run.final.cpus[cpu]
            if c.irqs_off and c.stuck_step < i and p.outcome != {NOT_REACHED}:
                # ... and the model says so, row by row
                for row in features.ipi_rows():
                    if row in (BACKTRACE_ROW, KGDB_ROW) and features.arch.nmi_ipis:
                        continue
                    if row == "CPU stop NMIs":
                        continue
                    assert p.counters.get(row, {}).get(cpu) == Range(0, 0), (row, cpu, p.name)
    # without the seed commits there is no claim about their rows
    for cid, _, _ in run.claims():
        if not features.backtrace_ipi:
            assert f"counter:{BACKTRACE_ROW}" not in cid
        if not features.kgdb_roundup_ipi:
            assert f"counter:{KGDB_ROW}" not in cid


@PROP
@given(scenarios(), FEATURES)
def test_property_between_sums_the_steps(scn, features):
    ncpus, steps = scn
    run = predict(steps, features, ncpus)
    snaps = [p for p in run.predictions if p.snapshot is not None]
    for a, b in zip(snaps, snaps[1:]):
        got = run.between(a.snapshot.label, b.snapshot.label)
        both = set(a.snapshot.columns) & set(b.snapshot.columns)
        assert set(got[features.ipi_rows()[0]]) == both
        for row in (BACKTRACE_ROW, KGDB_ROW):
            if row not in got:
                continue
            for cpu in both:
                total = 0
                exact = True
                for p in run.predictions[a.index + 1:b.index]:
                    r = p.counters.get(row, {}).get(cpu, Range(0, 0))
                    total += r.lo
                    exact = exact and r.is_exact
                assert got[row][cpu].lo == total
                assert got[row][cpu].is_exact == exact


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["F", "D", "-", " "]), min_size=1, max_size=8))
def test_property_kdb_string_round_trips(states):
    text = available_cpus(states, 8)
    parsed = parse_available(text)
    assert parsed is not None
    online = [i for i, s in enumerate(states) if s != "F"]
    top = max(online) if online else -1
    expect = {i: s for i, s in enumerate(states) if i <= top}
    assert parsed == expect
    # groups are maximal: neighbouring groups never share a state
    groups = text.split(", ") if text else []
    marks = [g[g.index("(") + 1] if "(" in g else " " for g in groups]
    assert all(x != y for x, y in zip(marks, marks[1:]))
