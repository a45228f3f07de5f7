"""The parsers on damaged logs: real golden logs with flipped bytes,
truncations, invalid UTF-8, inserted junk, and a megabyte of junk. They
must never raise, must stay JSON-serialisable, and must keep what the
damage did not touch (a log cut off keeps the blocks before the cut)."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.parsers import backtrace, console_lines, observe, reports
from harness.parsers import kdb_session as kdb

CONSOLE = Path(__file__).resolve().parents[1] / "data" / "console"
LOGS: dict[str, bytes] = {}
for _p in sorted(CONSOLE.glob("*.log")):
    _data = _p.read_bytes()
    LOGS[_p.name] = _data[_data.find(b"\n# ---\n") + 7:]
NAMES = sorted(LOGS)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_all(text: str) -> dict:
    """Every parser, each on its own and through observe()."""
    for rnd in backtrace.parse_all(text):
        json.dumps(rnd.to_json())
        assert isinstance(rnd.forms(), dict)
    json.dumps(backtrace.parse(text).to_json())
    json.dumps(kdb.parse(text, ncpus=4).to_json())
    json.dumps(kdb.parse(text).to_json())
    for r in reports.parse(text):
        json.dumps(r.to_json())
        assert r.first_line <= r.last_line and isinstance(r.title, str)
    console_lines.split(text)
    obs = observe.observe(text, cpus=4)
    json.dumps(obs)
    return obs


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


@FUZZ
@given(name=st.sampled_from(NAMES), data=st.data())
def test_byte_flips(name: str, data: st.DataObject) -> None:
    raw = bytearray(LOGS[name])
    for _ in range(data.draw(st.integers(1, 40))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    run_all(decode(bytes(raw)))


@FUZZ
@given(name=st.sampled_from(NAMES), junk=st.binary(min_size=1, max_size=2000), data=st.data())
def test_junk_and_invalid_utf8_inserted(name: str, junk: bytes, data: st.DataObject) -> None:
    raw = LOGS[name]
    at = data.draw(st.integers(0, len(raw)))
    # Invalid UTF-8 sequences among the junk, decoded the way the console is.
    junk = junk.replace(b"a", b"\xc3\x28").replace(b"b", b"\xff\xfe")
    run_all(decode(raw[:at] + junk + raw[at:]))


@FUZZ
@given(name=st.sampled_from(NAMES), text=st.text(max_size=400), data=st.data())
def test_lines_replaced_by_text(name: str, text: str, data: st.DataObject) -> None:
    lines = decode(LOGS[name]).split("\n")
    at = data.draw(st.integers(0, len(lines) - 1))
    lines[at] = text
    run_all("\n".join(lines))


@FUZZ
@given(name=st.sampled_from([n for n in NAMES if n.startswith("sysrq-l")]), data=st.data())
def test_truncation_keeps_what_came_before(name: str, data: st.DataObject) -> None:
    full_text = decode(LOGS[name])
    cut = data.draw(st.integers(0, len(full_text)))
    text = full_text[:cut]
    run_all(text)
    full = backtrace.parse_all(full_text)
    part = backtrace.parse_all(text)
    assert len(part) <= len(full)
    for a, b in zip(full, part):
        for cpu, blk in b.cpus.items():
            assert cpu in a.cpus and a.cpus[cpu].form == blk.form
            # What the cut left of a block is a prefix of the whole block;
            # the last frame may itself be cut short.
            got = [f.function for f in blk.frames]
            want = [f.function for f in a.cpus[cpu].frames][:len(got)]
            if blk.truncated:
                got, want = got[:-1], want[:-1]
            assert got == want
            if blk.last_line == a.cpus[cpu].last_line and not blk.truncated:
                assert blk.registers == a.cpus[cpu].registers
        if b.sender is not None:
            assert (b.sender, b.targets) == (a.sender, a.targets)


@FUZZ
@given(name=st.sampled_from([n for n in NAMES if n.startswith("kdb-")]), data=st.data())
def test_kdb_truncation_states_are_a_prefix(name: str, data: st.DataObject) -> None:
    full_text = decode(LOGS[name])
    text = full_text[:data.draw(st.integers(0, len(full_text)))]
    part, full = kdb.parse(text, ncpus=4), kdb.parse(full_text, ncpus=4)
    assert len(part.sessions) <= len(full.sessions)
    for a, b in zip(full.sessions, part.sessions):
        for sa, sb in zip(a.statuses, b.statuses):
            # A status line cut in its middle may lose CPUs, never invent them.
            assert set(sb.states.items()) <= set(sa.states.items()) | {
                (c, kdb.OFFLINE) for c in range(4)}


# Pieces of the lines the parsers look for, and numbers that break naive
# int(): Unicode digits str.isdigit() accepts, thousands of digits.
FRAGMENTS = [
    "[    1.000000][    C3] ", "[    2.5][T60] ", "[ 1.0][C", "] ", "NMI backtrace for cpu ",
    " skipped: idling at ", "Sending NMI from CPU ", " to CPUs ", "CPU", ": ", "CPU: ", " PID: ",
    " Comm: ", "[<ffffffff80004c14>] ", "walk_stackframe+0x0/0x6e", "+0x", "/0x", "epc : ",
    " ra : ", "status: ", "Call Trace:", "Entering kdb (current=0x1, pid ", ") on processor ",
    " due to ", "[2]kdb> ", "more> ", "Currently on cpu ", "Available cpus: ", "(-)", "(D)",
    "(F)", ", ", "-", "Stack traceback for pid ", "0xff600000008e8000 ", "WARNING: no task for cpu ",
    "type go a second time", "Kernel panic - not syncing: ", "Unable to handle kernel ",
    " at virtual address ", "Oops [#", "kernel BUG at ", "WARNING: CPU: ", " at ",
    "watchdog: BUG: soft lockup - CPU#", " stuck for ", "s! [sh:1]", "Watchdog detected hard LOCKUP on cpu ",
    "rcu: INFO: rcu_sched self-detected stall on CPU", "rcu: \t", "INFO: task sh:", " blocked for more than ",
    " seconds.", "smp: csd: Detected non-responsive CSD lock (#", ") on CPU#", ", waiting ", " ns for CPU#",
    "(0x0).", "lkdtm: Performing direct entry ", "PANIC: ", "---[ end trace 0 ]---", "cut here",
    "0", "1", "3", "²", "٣", "9" * 5000, "\r", "\x1b[6n", "\ufffd", " ", "\t",
]


@FUZZ
@given(st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join), max_size=40))
def test_lines_made_of_kernel_fragments(lines: list[str]) -> None:
    text = "\n".join(lines)
    run_all(text)
    run_all(text + "\n")


def test_a_megabyte_of_junk_is_linear_and_harmless() -> None:
    rnd = random.Random(7)
    alphabet = "[]<>()+-/:#0123456789abcdefx CPUNMIkdb>\t\r\x1b" + "é"
    junk = "".join(rnd.choice(alphabet) for _ in range(1 << 20))
    # One line of a megabyte, and the same junk cut into short lines.
    for text in (junk, "\n".join(junk[i:i + 80] for i in range(0, len(junk), 80))):
        t0 = time.perf_counter()
        obs = run_all(text)
        assert time.perf_counter() - t0 < 20
        assert obs["lines"] >= 1


@pytest.mark.parametrize("n", [100000, 1900])
def test_pathological_lines_do_not_backtrack(n: int) -> None:
    # Shapes that make naive regexes explode: long runs of the characters
    # the patterns look for, without the part that would end the match.
    # 1900 characters stays under klog.MAX_LINE, so every pattern sees it.
    k = n // 5
    nasty = [
        "[<" + "f" * n,
        "[<ffffffff80004c14>] " + "a+0x1" * k,
        "NMI backtrace for cpu " + "9" * n,
        "Sending NMI from CPU 1 to CPUs " + "0," * (n // 2),
        "Available cpus: " + "0-1(-), " * (n // 8),
        "Unable to handle kernel " + "x " * (n // 2),
        "WARNING: CPU: 1 PID: 1 at " + "a" * n,
        "WARNING: CPU: 1 PID: 1 at " + "a " * (n // 2),
        "csd: Detected non-responsive CSD lock (#1) on CPU#1, waiting 1 ns for CPU#00 " + "a" * n,
        "INFO: task " + ":1" * (n // 2) + " blocked for more than",
        "BUG: " + "BUG: " * k,
        "[" + " " * n + "1.0]",
        "[    1.000000][" + " " * n + "C1]",
        "epc : " + "0" * n,
        " gp : " + "0000000000000000 gp : " * (n // 22),
        "rvh# " + "[    1.0" * (n // 8),
        "\x1b[" + "1;" * (n // 2),
    ]
    t0 = time.perf_counter()
    for line in nasty:
        run_all(line + "\n" + line)
        run_all("[    1.000000][    C1] " + line + "\n")
    assert time.perf_counter() - t0 < 20


ADVERSARIAL = {
    # Each line is cheap to write and as expensive as a line can be for
    # one parser: CPU lists that expand, headers for ever new CPUs/streams.
    "cpu lists": lambda i: f"[    1.000000][   T1] Sending NMI from CPU 1 to CPUs 0-4095,{i}:",
    "kdb statuses": lambda i: (f"Entering kdb (current=0x1, pid {i}) on processor 0 due to x\n"
                               if i % 50 == 0 else "Available cpus: 0-511(-), 512-9999"),
    "new cpu each line": lambda i: f"[    1.000000][    C{i % 99999}] NMI backtrace for cpu {i % 99999}",
    "new stream each line": lambda i: f"[    1.000000][    C{i}] Kernel panic - not syncing: x",
    "report bodies": lambda i: f"[    1.000000][    C{i % 7}] [<ffffffff80004c14>] f+0x{i:x}/0x10",
}


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL))
def test_adversarial_megabyte(kind: str) -> None:
    make = ADVERSARIAL[kind]
    lines, size, i = [], 0, 0
    while size < 1 << 20:
        line = make(i)
        lines.append(line)
        size += len(line) + 1
        i += 1
    text = "\n".join(lines) + "\n"
    t0 = time.perf_counter()
    obs = observe.observe(text, cpus=4)
    elapsed = time.perf_counter() - t0
    assert elapsed < 30, f"{kind}: {elapsed:.1f} s for 1 MB"
    assert len(json.dumps(obs)) < 40 << 20       # output bounded, not input x CPUs


def test_empty_and_tiny_inputs() -> None:
    for text in ("", "\n", "\r", "\x00", "[", "# ---\n", "[0]kdb> ", "more> ", "CPU1:"):
        obs = run_all(text)
        assert obs["backtraces"] == [] or text == "CPU1:"
