#!/usr/bin/env python3
"""Regenerate the golden console logs in tests/data/console/ from real guest runs.

Not a test (pytest does not collect it): it boots QEMU once per scenario,
drives the guest, and writes `<name>.log` = a header plus the raw console
text from the scenario's first command on. The header's `expect:` is left
empty; fill it with `pytest tests/test_golden.py --update-golden` and review
it by eye against the log before committing.

    .venv/bin/python tests/data/capture_console.py                 # all default-kernel scenarios
    .venv/bin/python tests/data/capture_console.py sysrq-l-busy-cpu3
    .venv/bin/python tests/data/capture_console.py --derive        # only the derived variants
    .venv/bin/python tests/data/capture_console.py --revert-backtrace DIR/Image   # likewise --revert-roundup,
    .venv/bin/python tests/data/capture_console.py --kgdb-fixed DIR/Image         # for the other kernels
    .venv/bin/python tests/data/capture_console.py --make-map KERNEL DIR/System.map
    .venv/bin/python tests/data/capture_console.py --from-run OUT/KERNEL/SCENARIO NAME KERNEL --about TEXT

--image is the "default" kernel (/tmp/kb: 6.12.107 as Debian ships it, so
`go` in kdb oopses there); --kgdb-fixed is the default recipe built with
kernels/patches/fix-riscv-kgdb-compiled-break-rvc.patch. After recapturing a
kernel's logs, cut its System.map again with --make-map: the golden test
symbolizes with tests/data/riscv64-6.12.107-<kernel>.map.

Derived variants (timestamps stripped, CRLF noise, cut off) are made from
the real logs already in the directory, never written by hand.
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.core.arch import RISCV64  # noqa: E402
from harness.core.errors import HarnessError  # noqa: E402
from harness.guest.console import Console  # noqa: E402
from harness.guest.machine import Machine, MachineSpec  # noqa: E402
from harness.kernel import initramfs  # noqa: E402

OUT = Path(__file__).resolve().parent / "console"
DEFAULT_IMAGE = Path("/tmp/kb/arch/riscv/boot/Image")
SEPARATOR = "# ---"
KDB_PROMPT = r"\[\d+\]kdb> "
SHELL_PROMPT = r"rvh# "
DIRECT = "/sys/kernel/debug/provoke-crash/DIRECT"
CRASH_KINDS = {"oops", "bug", "panic"}


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    kernel: str                         # "default", "revert-backtrace", "revert-roundup"
    drive: Callable[[Console], None]
    cmdline: tuple[str, ...] = ()
    cpus: int = 4


# ----------------------------------------------------------------- helpers

def sysrq(c: Console, key: str, cpu: int, timeout: float = 40) -> None:
    c.run(f"taskset -c {cpu} sh -c 'echo {key} > /proc/sysrq-trigger'", timeout=timeout)
    c.settle(0.5, 5)


def offline(c: Console, cpu: int) -> None:
    c.run(f"echo 0 > /sys/devices/system/cpu/cpu{cpu}/online", timeout=30)


def busy(c: Console, cpu: int) -> None:
    c.run(f"( taskset -c {cpu} sh -c 'while :; do :; done' & )", timeout=10)
    time.sleep(0.5)


def lkdtm_bg(c: Console, what: str, cpu: int) -> None:
    """An LKDTM type that never returns: run it in the background."""
    c.run(f"( taskset -c {cpu} sh -c 'echo {what} > {DIRECT}' & )", timeout=10)


def lkdtm_fg(c: Console, what: str, cpu: int, until: list[str], timeout: float) -> None:
    """An LKDTM type that crashes the writer: wait for the report's tail.
    kgdboc is always on, so the trap or oops may stop in kdb first: page
    through and `go` (at most three times) to let the report finish."""
    c.send(f"taskset -c {cpu} sh -c 'echo {what} > {DIRECT}'\n")
    stops = 0
    while True:
        m = c.expect(until + [KDB_PROMPT, r"more> "], timeout, f"LKDTM {what}")
        if m.re.pattern == "more> ":
            c.send(" ")
            continue
        if m.re.pattern == KDB_PROMPT and stops < 3:
            stops += 1
            c.send("go\r")
            continue
        break
    c.settle(1.0, 8)


def kdb_enter(c: Console, cpu: int) -> None:
    c.send(f"taskset -c {cpu} sh -c 'echo g > /proc/sysrq-trigger'\n")
    c.expect([KDB_PROMPT], 40, "the kdb prompt")


def kdb(c: Console, command: str, timeout: float = 30, pager: str | None = None) -> None:
    """One kdb command; answers `more> ` with `pager` when given."""
    c.send(command + "\r")
    while True:
        m = c.expect([KDB_PROMPT, r"more> "], timeout, f"kdb `{command}`")
        if m.group(0) == "more> " and pager is not None:
            c.send(pager)
            continue
        return


def kdb_go(c: Console) -> None:
    """`go` on this kernel resumes after the 2-byte c.ebreak at +4 and oopses
    (see the report); wait for whatever comes back: shell, kdb or nothing."""
    c.send("go\r")
    try:
        c.expect([KDB_PROMPT, SHELL_PROMPT], 15, "kdb `go`")
    except HarnessError:
        pass
    c.settle(0.5, 5)


# --------------------------------------------------------------- scenarios

def _sysrq_from(cpu: int) -> Callable[[Console], None]:
    return lambda c: sysrq(c, "l", cpu)


def _sysrq_offline(c: Console) -> None:
    offline(c, 2)
    sysrq(c, "l", 1)


def _sysrq_busy3(c: Console) -> None:
    busy(c, 3)
    sysrq(c, "l", 1)


def _sysrq_busy23(c: Console) -> None:
    busy(c, 2)
    busy(c, 3)
    sysrq(c, "l", 0)


def _sysrq_twice(c: Console) -> None:
    sysrq(c, "l", 1)
    sysrq(c, "l", 2)


def _sysrq_break(c: Console) -> None:
    c.run("echo serial-break", timeout=10)
    c.serial_break("l")
    c.expect([r"NMI backtrace for cpu \d+|CPU\d+:"], 20, "sysrq-l over the serial line")
    c.settle(1.0, 8)


def _sysrq_stuck3(c: Console) -> None:
    lkdtm_bg(c, "HARDLOCKUP", 3)
    time.sleep(1)
    sysrq(c, "l", 1, timeout=60)


def _sysrq_hotplug_cycle(c: Console) -> None:
    offline(c, 2)
    c.run("echo 1 > /sys/devices/system/cpu/cpu2/online", timeout=30)
    sysrq(c, "l", 2)


def _kdb_from(cpu: int, set_lines: bool = True) -> Callable[[Console], None]:
    def drive(c: Console) -> None:
        kdb_enter(c, cpu)
        if set_lines:
            kdb(c, "set LINES 10000")
        kdb(c, "btc", pager=" ")
        kdb_go(c)
    return drive


def _kdb_offline(cpu: int, enter: int) -> Callable[[Console], None]:
    def drive(c: Console) -> None:
        offline(c, cpu)
        _kdb_from(enter)(c)
    return drive


def _kdb_stuck3(c: Console) -> None:
    lkdtm_bg(c, "HARDLOCKUP", 3)
    time.sleep(1)
    kdb_enter(c, 1)
    kdb(c, "set LINES 10000")
    kdb(c, "cpu")
    kdb(c, "btc")
    c.send("go\r")
    c.expect([r"type go a second time", KDB_PROMPT, SHELL_PROMPT], 20, "go refused")
    c.expect([KDB_PROMPT], 10, "kdb prompt after the refusal")
    kdb_go(c)


def _kdb_busy3(c: Console) -> None:
    busy(c, 3)
    _kdb_from(0)(c)


def _kdb_pager(c: Console) -> None:
    kdb_enter(c, 2)
    # No `set LINES`: btc stops at `more> `; a space shows one more page,
    # then `q` ends the listing early.
    c.send("btc\r")
    c.expect([r"more> "], 30, "the pager")
    c.send(" ")
    c.expect([r"more> "], 30, "the pager again")
    c.send("q")
    c.expect([KDB_PROMPT], 30, "kdb prompt after q")
    kdb_go(c)


def _kdb_cpu_switch(c: Console) -> None:
    kdb_enter(c, 1)
    kdb(c, "set LINES 10000")
    kdb(c, "cpu 3")
    kdb(c, "cpu")
    kdb(c, "bt")
    kdb(c, "go")
    kdb(c, "cpu 1")
    kdb_go(c)


def _kdb_btc_one(c: Console) -> None:
    kdb_enter(c, 0)
    kdb(c, "set LINES 10000")
    kdb(c, "btc 2")
    kdb(c, "btc 7")
    kdb_go(c)


def _lkdtm(what: str, until: list[str], timeout: float = 30, cpu: int = 3,
           after: float = 0.0) -> Callable[[Console], None]:
    def drive(c: Console) -> None:
        lkdtm_fg(c, what, cpu, until, timeout)
        if after:
            time.sleep(after)
            c.settle(1.0, 8)
    return drive


def _no_kdb(drive: Callable[[Console], None]) -> Callable[[Console], None]:
    def wrapped(c: Console) -> None:
        # An empty kgdboc unregisters the kgdb I/O driver: no kdb on oops.
        c.run("echo > /sys/module/kgdboc/parameters/kgdboc", timeout=10)
        drive(c)
    return wrapped


def _lkdtm_warning(c: Console) -> None:
    c.run(f"taskset -c 2 sh -c 'echo WARNING > {DIRECT}'", timeout=30)
    c.settle(0.5, 5)


def _lkdtm_warning_message(c: Console) -> None:
    c.run(f"taskset -c 1 sh -c 'echo WARNING_MESSAGE > {DIRECT}'", timeout=30)
    c.settle(0.5, 5)


def _lkdtm_wait(what: str, cpu: int, until: list[str], timeout: float,
                tail: float = 2.0) -> Callable[[Console], None]:
    def drive(c: Console) -> None:
        lkdtm_bg(c, what, cpu)
        c.expect(until, timeout, f"the report for {what}")
        time.sleep(tail)
        c.settle(1.0, 10)
    return drive


def _softlockup(c: Console) -> None:
    lkdtm_bg(c, "SOFTLOCKUP", 3)
    c.expect([r"soft lockup - CPU#3"], 60, "the soft lockup report")
    c.expect([r"rcu: INFO: |self-detected stall"], 40, "the RCU stall report")
    time.sleep(2)
    c.settle(1.0, 10)


def _hung_task(c: Console) -> None:
    lkdtm_bg(c, "HUNG_TASK", 2)
    c.expect([r"blocked for more than \d+ seconds"], 60, "the hung task report")
    time.sleep(2)
    c.settle(1.0, 10)


SCENARIOS: list[Scenario] = [
    # sysrq-l, default kernel (backtrace IPI present)
    *(Scenario(f"sysrq-l-from-cpu{n}" + ("-idle" if n == 1 else ""),
               f"sysrq-l written from CPU {n} on an otherwise idle 4-CPU guest",
               "default", _sysrq_from(n)) for n in range(4)),
    Scenario("sysrq-l-cpu2-offline", "CPU 2 taken offline, then sysrq-l from CPU 1",
             "default", _sysrq_offline),
    Scenario("sysrq-l-busy-cpu3", "a shell busy loop pinned to CPU 3, sysrq-l from CPU 1",
             "default", _sysrq_busy3),
    Scenario("sysrq-l-busy-cpu2-cpu3", "busy loops on CPUs 2 and 3, sysrq-l from CPU 0",
             "default", _sysrq_busy23),
    Scenario("sysrq-l-twice", "sysrq-l from CPU 1, then again from CPU 2: two rounds",
             "default", _sysrq_twice),
    Scenario("sysrq-l-serial-break", "sysrq-l sent as BREAK + l on the serial line (UART IRQ)",
             "default", _sysrq_break),
    Scenario("sysrq-l-stuck-cpu3", "LKDTM HARDLOCKUP on CPU 3, then sysrq-l from CPU 1: "
             "CPU 3 never answers, the sender waits 10 s", "default", _sysrq_stuck3),
    Scenario("sysrq-l-after-hotplug-cycle", "CPU 2 offline then online again, sysrq-l from CPU 2",
             "default", _sysrq_hotplug_cycle),
    # kdb
    Scenario("kdb-btc-from-cpu2", "kdb entered from CPU 2 (idle guest), btc, go",
             "default", _kdb_from(2)),
    Scenario("kdb-btc-from-cpu0", "kdb entered from CPU 0 (idle guest), btc, go",
             "default", _kdb_from(0)),
    Scenario("kdb-btc-offline-cpu1", "CPU 1 offline, kdb from CPU 2, btc, go",
             "default", _kdb_offline(1, 2)),
    Scenario("kdb-btc-offline-cpu3", "CPU 3 (the last) offline, kdb from CPU 0, btc, go",
             "default", _kdb_offline(3, 0)),
    Scenario("kdb-btc-stuck-cpu3", "LKDTM HARDLOCKUP on CPU 3, kdb from CPU 1: 3(D), "
             "btc, go refused once, go again", "default", _kdb_stuck3),
    Scenario("kdb-btc-busy-cpu3", "busy loop on CPU 3, kdb from CPU 0, btc, go",
             "default", _kdb_busy3),
    Scenario("kdb-btc-pager", "btc without `set LINES`: the more> pager, space, then q",
             "default", _kdb_pager),
    Scenario("kdb-cpu-switch", "kdb from CPU 1, `cpu 3` switches to CPU 3, bt there",
             "default", _kdb_cpu_switch),
    Scenario("kdb-btc-one-cpu", "kdb from CPU 0, `btc 2` then `btc 7` (no such CPU)",
             "default", _kdb_btc_one),
    # LKDTM reports
    # kgdboc is on in every harness boot, so a crash first stops in kdb;
    # these keep that (and `go`), the -no-kdb ones turn kgdboc off first.
    Scenario("lkdtm-panic-kdb-go", "LKDTM PANIC on CPU 3, kdb stops the panic, `go` until it ends",
             "default", _lkdtm("PANIC", [r"end Kernel panic"], 30, after=1)),
    Scenario("lkdtm-bug-kdb-go", "LKDTM BUG on CPU 3, kdb stops it, `go` until it ends",
             "default", _lkdtm("BUG", [r"end trace"], 30, after=1)),
    Scenario("lkdtm-exception-kdb-go", "LKDTM EXCEPTION (NULL write) on CPU 2, kdb on the oops, "
             "`go`", "default", _lkdtm("EXCEPTION", [r"end trace"], 30, cpu=2, after=1)),
    Scenario("lkdtm-panic", "LKDTM PANIC on CPU 3 with kgdboc turned off",
             "default", _no_kdb(_lkdtm("PANIC", [r"end Kernel panic"], 30, after=1))),
    Scenario("lkdtm-bug", "LKDTM BUG on CPU 3 with kgdboc turned off",
             "default", _no_kdb(_lkdtm("BUG", [r"end trace", r"end Kernel panic"], 30, after=1))),
    Scenario("lkdtm-exception", "LKDTM EXCEPTION (NULL write) on CPU 2 with kgdboc turned off",
             "default", _no_kdb(_lkdtm("EXCEPTION", [r"end trace"], 30, cpu=2, after=1))),
    Scenario("lkdtm-warning", "LKDTM WARNING on CPU 2 (the writer survives)",
             "default", _lkdtm_warning),
    Scenario("lkdtm-warning-message", "LKDTM WARNING_MESSAGE on CPU 1",
             "default", _lkdtm_warning_message),
    Scenario("lkdtm-hardlockup", "LKDTM HARDLOCKUP on CPU 3: the buddy detector's report",
             "default", _lkdtm_wait("HARDLOCKUP", 3, [r"hard LOCKUP"], 90, tail=3)),
    Scenario("lkdtm-softlockup", "LKDTM SOFTLOCKUP on CPU 3: soft lockup and RCU stall",
             "default", _softlockup),
    Scenario("lkdtm-hung-task", "LKDTM HUNG_TASK on CPU 2 (hung task timeout 10 s)",
             "default", _hung_task),
    Scenario("csd-lock-timeout", "LKDTM SMP_CALL_LOCKUP from CPU 1 with csdlock_debug=1",
             "default", _lkdtm_wait("SMP_CALL_LOCKUP", 1, [r"CSD lock \(#\d+\) handling"], 60,
                                    tail=16), cmdline=("csdlock_debug=1",)),
    Scenario("lkdtm-spinlockup", "LKDTM SPINLOCKUP twice: the second writer spins on CPU 2",
             "default", lambda c: (lkdtm_bg(c, "SPINLOCKUP", 1), time.sleep(1),
                                   _lkdtm_wait("SPINLOCKUP", 2, [r"soft lockup - CPU#2"],
                                               60)(c))),
    # the default recipe once it carries kernels/patches/fix-riscv-kgdb-compiled-break-rvc.patch
    Scenario("kdb-btc-from-cpu2-kgdb-fixed", "kdb-btc-from-cpu2 on the default kernel with the "
             "kgdb compiled-break fix: go resumes", "default-kgdb-fixed", _kdb_from(2)),
    Scenario("kdb-btc-stuck-cpu3-kgdb-fixed", "kdb-btc-stuck-cpu3 on the default kernel with the "
             "kgdb compiled-break fix", "default-kgdb-fixed", _kdb_stuck3),
    Scenario("lkdtm-panic-kdb-go-kgdb-fixed", "lkdtm-panic-kdb-go on the default kernel with the "
             "kgdb compiled-break fix", "default-kgdb-fixed",
             _lkdtm("PANIC", [r"end Kernel panic"], 30, after=1)),
    # reverted kernels
    Scenario("sysrq-l-reverted-backtrace-from-cpu1", "revert of f15c21a3de1b (no backtrace "
             "IPI): sysrq-l from CPU 1 falls back to CPUn: dumps", "revert-backtrace",
             _sysrq_from(1)),
    Scenario("sysrq-l-reverted-backtrace-busy-cpu3", "revert of f15c21a3de1b, busy loop on "
             "CPU 3, sysrq-l from CPU 1", "revert-backtrace", _sysrq_busy3),
    Scenario("sysrq-l-reverted-backtrace-stuck-cpu3", "revert of f15c21a3de1b, LKDTM "
             "HARDLOCKUP on CPU 3, sysrq-l from CPU 1", "revert-backtrace", _sysrq_stuck3),
    Scenario("kdb-btc-reverted-roundup", "revert of 983f12149942 (no kgdb round-up IPI): "
             "kdb from CPU 2, btc, go", "revert-roundup", _kdb_from(2)),
    Scenario("kdb-btc-reverted-roundup-busy-cpu3", "revert of 983f12149942, busy loop on "
             "CPU 3, kdb from CPU 0, btc, go", "revert-roundup", _kdb_busy3),
]


# ----------------------------------------------------------------- running

def capture(s: Scenario, image: Path, rd: Path, workdir: Path) -> str:
    spec = MachineSpec(RISCV64, image, rd, cpus=s.cpus, cmdline=s.cmdline)
    with Machine(spec, workdir / s.name) as m:
        m.boot()
        assert m.console is not None
        c = m.console
        c.allowed_crashes = set(CRASH_KINDS)
        c.run("echo 1 > /proc/sys/kernel/sysrq", timeout=10)
        start = c.position
        try:
            s.drive(c)
        except HarnessError as exc:
            # The log up to the failure is still real; keep it and say so.
            print(f"  {s.name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        c.settle(0.3, 3)
        return c.text(start)


def build_id(image: Path) -> str:
    """Which build: the kernel cache key when the Image is in the harness's
    cache, else the Image's path."""
    parent = image.resolve().parent.name
    return parent[:12] if len(parent) == 64 else str(image)


def header(about: str, source: dict[str, object]) -> str:
    import yaml
    doc = {"about": about, "source": source, "expect": None}
    text = yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=False)
    return "".join(f"# {line}\n" for line in text.splitlines()) + SEPARATOR + "\n"


def write_golden(name: str, about: str, source: dict[str, object], log: str) -> Path:
    path = OUT / f"{name}.log"
    with open(path, "w", encoding="utf-8", errors="replace", newline="") as fh:
        fh.write(header(about, source))
        fh.write(log)
    return path


def read_log(path: Path) -> tuple[str, str]:
    """(header text, raw log) of a golden file."""
    data = path.read_bytes().decode("utf-8", errors="replace")
    marker = "\n" + SEPARATOR + "\n"
    at = data.find(marker)
    return data[:at + len(marker)], data[at + len(marker):]


# ----------------------------------------------------------------- derived

_PRINTK_PREFIX = re.compile(r"\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?")


def derive() -> None:
    """Variants made from real logs: what other consoles and bad links do."""
    rnd = random.Random(3)

    def src(name: str) -> tuple[str, dict[str, object]]:
        import yaml
        head, log = read_log(OUT / f"{name}.log")
        meta = yaml.safe_load("\n".join(line[2:] for line in head.splitlines()
                                        if line.startswith("# ") and line != SEPARATOR))
        return log, meta["source"]

    for base in ("sysrq-l-busy-cpu3", "lkdtm-warning", "kdb-btc-stuck-cpu3"):
        log, source = src(base)
        write_golden(f"{base}-no-timestamps",
                     f"{base}.log with every printk prefix removed (no PRINTK_TIME/CALLER)",
                     {**source, "derived": f"{base}: printk prefixes stripped"},
                     _PRINTK_PREFIX.sub("", log))

    log, source = src("sysrq-l-busy-cpu2-cpu3")
    noisy = []
    for line in log.split("\n"):
        # A flaky serial link: doubled CRs, stray LF-CR, the odd CR mid-line.
        if rnd.random() < 0.3:
            line += "\r"
        if rnd.random() < 0.1 and len(line) > 10:
            k = rnd.randrange(1, len(line))
            line = line[:k] + "\r" + line[k:]
        noisy.append(line)
    write_golden("sysrq-l-busy-cpu2-cpu3-crlf-noise",
                 "sysrq-l-busy-cpu2-cpu3.log with extra CRs at line ends and inside lines",
                 {**source, "derived": "sysrq-l-busy-cpu2-cpu3: CR noise (seed 3)"},
                 "\n".join(noisy))

    for base, marker in (("sysrq-l-from-cpu0", "] handle_softirqs+"),
                         ("kdb-btc-from-cpu2", "kgdb_cpu_enter+"),
                         ("lkdtm-bug", "] lkdtm_do_action+")):
        log, source = src(base)
        at = log.find(marker)
        if at < 0:
            at = len(log) // 2
        # Cut in the middle of a frame line, as a log truncated by a reset is.
        cut = log[:at + len(marker) - 3]
        write_golden(f"{base}-cut-mid-trace", f"{base}.log cut off in the middle of a line of its trace",
                     {**source, "derived": f"{base}: truncated after {len(cut)} characters"}, cut)


DATA = Path(__file__).resolve().parent
_ADDR = re.compile(r"\b(?:0x)?(ffffffff8[0-9a-f]{7})\b")


def map_path(kernel: str) -> Path:
    """The cut-down System.map the golden test uses for logs of a kernel."""
    return DATA / f"riscv64-6.12.107-{kernel}.map"


def make_map(kernel: str, full: Path) -> None:
    """Cut a System.map down to the symbols the golden logs of that kernel
    mention: for every kernel text address in them (and the byte before,
    for return addresses past a noreturn call), the symbols at and after
    it, so sizes come out as kallsyms computes them."""
    import bisect

    import yaml
    entries = []
    for line in full.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            entries.append((int(parts[0], 16), line))
    entries.sort(key=lambda e: e[0])
    addrs = [a for a, _ in entries]
    keep: set[int] = set()
    for path in sorted(OUT.glob("*.log")):
        head, log = read_log(path)
        meta = yaml.safe_load("\n".join(ln[2:] for ln in head.splitlines()
                                        if ln.startswith("# ") and ln != SEPARATOR))
        if (meta.get("source") or {}).get("kernel") != kernel:
            continue
        for m in _ADDR.finditer(log):
            value = int(m.group(1), 16)
            for a in (value, value - 1):
                i = bisect.bisect_right(addrs, a) - 1
                if i < 0:
                    continue
                lo = bisect.bisect_left(addrs, addrs[i])      # every alias at that address
                hi = bisect.bisect_right(addrs, addrs[min(i + 1, len(addrs) - 1)])
                keep.update(range(lo, hi))
    out = map_path(kernel)
    with open(out, "w") as fh:
        fh.write(f"# {len(keep)} symbols of {full} (the {kernel} kernel the golden\n"
                 "# logs were captured with) around the addresses those logs mention;\n"
                 "# made by tests/data/capture_console.py --make-map KERNEL SYSTEM_MAP\n")
        for i in sorted(keep):
            fh.write(entries[i][1] + "\n")
    print(f"{out.name}: {len(keep)} symbols")


def from_run(run_dir: Path, name: str, kernel: str, about: str) -> Path:
    """A golden file from the artifacts of an `rvharness run`: its
    console.log from the first shell prompt on, with the kernel, CPU count
    and command line taken from the run's qemu.argv and observations.json."""
    import json
    console = (run_dir / "console.log").read_bytes().decode("utf-8", errors="replace")
    at = console.find("rvh# ")
    if at < 0:
        raise SystemExit(f"{run_dir / 'console.log'}: no shell prompt in it")
    argv = (run_dir / "qemu.argv").read_text().split("\n")     # one argument a line
    append = argv[argv.index("-append") + 1] if "-append" in argv else ""
    extra = " ".join(w for w in append.split() if not w.startswith(("console=", "earlycon=", "kgdboc=")))
    obs = json.loads((run_dir / "observations.json").read_text())
    image = Path(argv[argv.index("-kernel") + 1])
    source = {"kernel": kernel, "build": build_id(image), "cpus": obs["cpus"],
              "cmdline": extra or None, "run": f"{run_dir.parent.name}/{run_dir.name}"}
    return write_golden(name, about, source, console[at:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="scenarios to capture (default: all with a kernel)")
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--revert-backtrace", type=Path, help="Image without f15c21a3de1b")
    ap.add_argument("--revert-roundup", type=Path, help="Image without 983f12149942")
    ap.add_argument("--kgdb-fixed", type=Path,
                    help="default Image built with the kgdb compiled-break fix")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/capture"))
    ap.add_argument("--derive", action="store_true", help="only make the derived variants")
    ap.add_argument("--make-map", nargs=2, metavar=("KERNEL", "SYSTEM_MAP"),
                    help="only cut SYSTEM_MAP down to tests/data/riscv64-6.12.107-KERNEL.map "
                         "for the logs whose source.kernel is KERNEL")
    ap.add_argument("--from-run", nargs=3, metavar=("RUN_DIR", "NAME", "KERNEL"),
                    help="only write NAME.log from an rvharness artifact directory "
                         "(<out>/<kernel>/<scenario>); KERNEL names its System.map")
    ap.add_argument("--about", default="", help="the about: line for --from-run")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.from_run:
        run_dir, name, kernel = args.from_run
        print(from_run(Path(run_dir), name, kernel, args.about))
        return 0
    if args.make_map:
        make_map(args.make_map[0], Path(args.make_map[1]))
        return 0
    if not args.derive:
        images = {"default": args.image, "revert-backtrace": args.revert_backtrace,
                  "revert-roundup": args.revert_roundup, "default-kgdb-fixed": args.kgdb_fixed}
        rd = initramfs.build(RISCV64)
        known = {s.name for s in SCENARIOS}
        for n in args.names:
            if n not in known:
                ap.error(f"unknown scenario {n!r}")
        for s in SCENARIOS:
            if args.names and s.name not in args.names:
                continue
            image = images[s.kernel]
            if image is None:
                print(f"skip {s.name}: no {s.kernel} kernel given")
                continue
            t0 = time.monotonic()
            log = capture(s, image, rd, args.workdir)
            source = {"kernel": s.kernel, "build": build_id(image), "cpus": s.cpus,
                      "cmdline": " ".join(s.cmdline) or None}
            path = write_golden(s.name, s.about, source, log)
            print(f"{s.name}: {len(log)} chars, {time.monotonic() - t0:.1f} s -> {path.name}")
    if args.derive or not args.names:
        derive()
    return 0


if __name__ == "__main__":
    sys.exit(main())
