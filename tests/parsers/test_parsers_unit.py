"""Unit tests of the console parsers' building blocks: cpulist,
console_lines, klog, kdb's CPU list, report titles, and the symbolizer
(System.map cut from the real default kernel's, addr2line on a real ELF)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.parsers import backtrace, console_lines, cpulist, klog, reports
from harness.parsers import kdb_session as kdb
from harness.parsers.symbolize import Addr2Line, Symbolizer, SystemMap, has_debug_info

DATA = Path(__file__).resolve().parents[1] / "data"
CONSOLE = DATA / "console"
MAP = DATA / "riscv64-6.12.107-default.map"
FULL_MAP = Path("/tmp/kb/System.map")
FULL_VMLINUX = Path("/tmp/kb/vmlinux")


def raw(name: str) -> str:
    data = (CONSOLE / name).read_bytes()
    return data[data.find(b"\n# ---\n") + 7:].decode("utf-8", errors="replace")


# ------------------------------------------------------------------ cpulist

@pytest.mark.parametrize("text,cpus", [
    ("", []), ("0", [0]), ("0,2-3", [0, 2, 3]), ("1-3", [1, 2, 3]), (" 0 , 2 - 3 ", [0, 2, 3]),
    ("0-0", [0]),
])
def test_cpulist_parse(text: str, cpus: list[int]) -> None:
    assert cpulist.parse(text) == cpus


@pytest.mark.parametrize("text", ["x", "3-1", "0,,1", "0-", "-1", "0-99999", "1;2"])
def test_cpulist_rejects(text: str) -> None:
    assert cpulist.parse(text) is None


@pytest.mark.parametrize("cpus,text", [([], ""), ([0, 2, 3], "0,2-3"), ([3, 1, 2, 2], "1-3"),
                                       ([0, 1, 3, 5, 6, 7], "0-1,3,5-7")])
def test_cpulist_format_roundtrip(cpus: list[int], text: str) -> None:
    assert cpulist.format(cpus) == text
    assert cpulist.parse(text) == sorted(set(cpus))


# ------------------------------------------------------------ console_lines

def test_console_lines_prefix_caller_and_noise() -> None:
    text = ("[    0.906042][    C3] NMI backtrace for cpu 3\r\r\n"
            "[    0.906177][    C3]  ra : tick_nohz_idle_exit+0x78/0x9c\r\n"
            "[   20.756887][   T41] INFO: task sh:58 blocked\n"
            "\x1b[6nrvh# plain shell\n")
    lines = console_lines.split(text)
    assert [ln.text for ln in lines[:4]] == ["NMI backtrace for cpu 3",
                                             " ra : tick_nohz_idle_exit+0x78/0x9c",
                                             "INFO: task sh:58 blocked", "rvh# plain shell"]
    assert lines[0].timestamp == pytest.approx(0.906042) and lines[0].caller == "C3"
    assert lines[0].caller_cpu == 3 and lines[2].caller_cpu is None and lines[2].caller == "T41"
    assert lines[3].timestamp is None and lines[3].number == 4


def test_klog_recovers_a_prefix_after_the_prompt() -> None:
    # A real line: the kernel printed while the shell prompt was on the line.
    line = "rvh# \x1b[6n[    2.533297][   T58] lkdtm: Performing direct entry HARDLOCKUP"
    plain, = console_lines.split(line)
    assert plain.caller is None
    fixed, = klog.split(line)
    assert (fixed.text, fixed.caller, fixed.number) == (
        "lkdtm: Performing direct entry HARDLOCKUP", "T58", 1)


def test_klog_modes() -> None:
    assert klog.mode(klog.split("[    1.000000][    T1] a\nb\n")) == klog.CALLER
    assert klog.mode(klog.split("[    1.000000] a\nb\n")) == klog.TIME
    assert klog.mode(klog.split("a\nb\n")) == klog.PLAIN


@pytest.mark.parametrize("line,expect", [
    ("[<ffffffff80004c14>] walk_stackframe+0x0/0x6e", ("walk_stackframe", "0x0", "0x6e", False)),
    ("[<ffffffff8002d7b4>] _nohz_idle_balance.isra.0+0x1f6/0x294",
     ("_nohz_idle_balance.isra.0", "0x1f6", "0x294", False)),
    ("[<ffffffff80030bfa>] do_id", ("do_id", None, None, True)),
    ("[<ffffffff80030bfa>] do_idle+0x4", ("do_idle", None, None, True)),
    ("[<ffffffff80030bfa>] foo+0x4/0x10 [lkdtm]", ("foo", "0x4", "0x10", False)),
])
def test_parse_frame(line: str, expect: tuple) -> None:
    f = klog.parse_frame(line)
    assert f is not None and (f.function, f.offset, f.size, f.partial) == expect


@pytest.mark.parametrize("line", ["[<zz>] foo", "[<ffff", "ffff foo+0x0/0x1", "[<ffff>] a b c",
                                  "[<" + "f" * 5000 + ">] x"])
def test_parse_frame_rejects(line: str) -> None:
    assert klog.parse_frame(line) is None


def test_registers_and_task_line() -> None:
    regs = klog.parse_registers(" s8 : fffffffffffffff7 s9 : 000000008003d6b4 s10: 0000000000000000")
    assert regs == {"s8": "fffffffffffffff7", "s9": "000000008003d6b4", "s10": "0000000000000000"}
    assert klog.symbolic_register("epc : cpu_relax+0x8/0xa") == (klog.PC, "cpu_relax+0x8/0xa")
    assert klog.symbolic_register("epc : ffffffff8005f4ec ra : ffffffff8005f4d4 sp : 0") is None
    task = klog.parse_task_line("CPU: 3 UID: 0 PID: 59 Comm: sh Tainted: G             L     "
                                "6.12.107 #1")
    assert task is not None and (task.cpu, task.pid, task.comm, task.tainted) == (3, 59, "sh", "G")


# --------------------------------------------------------------- backtrace

def test_backtrace_interleaved_blocks_follow_the_caller_prefix() -> None:
    # Lines of CPU 2's and CPU 3's blocks shuffled together, as two IPI
    # handlers printing at once would; [C<n>] says whose each line is.
    text = raw("sysrq-l-busy-cpu2-cpu3.log").replace("\r", "")
    lines = text.split("\n")
    c2 = [i for i, ln in enumerate(lines) if "][    C2] " in ln]
    c3 = [i for i, ln in enumerate(lines) if "][    C3] " in ln]
    assert len(c2) > 10 and len(c3) > 10
    mixed = [lines[i] for pair in zip(c3, c2) for i in pair]
    rest = [ln for i, ln in enumerate(lines) if i not in set(c2) | set(c3)]
    at = next(i for i, ln in enumerate(rest) if "Sending NMI" in ln) + 1
    shuffled = "\n".join(rest[:at] + mixed + rest[at:]) + "\n"
    straight, mixed_rep = backtrace.parse(text), backtrace.parse(shuffled)
    assert not mixed_rep.corrupted
    for cpu in (2, 3):
        a, b = straight.cpus[cpu], mixed_rep.cpus[cpu]
        assert (b.form, b.comm, b.registers, b.mode) == (a.form, a.comm, a.registers, a.mode)
        assert len(b.registers) == 35       # 32 GPRs/pc, status, badaddr, cause


def test_backtrace_without_prefixes_is_read_in_order() -> None:
    text = re.sub(r"(?m)^\[\s*\d+\.\d+\]\[\s*[TC]\d+\] ?", "", raw("sysrq-l-from-cpu0.log"))
    rep = backtrace.parse(text)
    assert rep.forms() == {0: "full", 1: "full", 2: "idle", 3: "idle"}
    assert rep.cpus[1].pc == "sched_balance_rq+0x354/0x6d2" and len(rep.cpus[1].frames) == 16


def test_backtrace_flags_a_header_printed_by_another_cpu() -> None:
    text = ("[ 1.000000][   T5] Sending NMI from CPU 1 to CPUs 0,2:\n"
            "[ 1.000001][    C2] NMI backtrace for cpu 0 skipped: idling at x+0x1/0x2\n")
    rep = backtrace.parse(text)
    assert rep.corrupted and rep.missing == [2]


def test_backtrace_two_rounds() -> None:
    rounds = backtrace.parse_all(raw("sysrq-l-twice.log"))
    assert [(r.sender, r.targets) for r in rounds] == [(1, [0, 2, 3]), (2, [0, 1, 3])]
    assert backtrace.parse(raw("sysrq-l-twice.log")).sender == 1


# --------------------------------------------------------------------- kdb

@pytest.mark.parametrize("listed,current,ncpus,states", [
    ("0-1(-), 2, 3(D)", 2, 4, {0: "idle", 1: "idle", 2: "current", 3: "unresponsive"}),
    ("0(-), 1(F), 2, 3(-)", 2, 4, {0: "idle", 1: "offline", 2: "current", 3: "idle"}),
    ("0, 1-2(-)", 0, 4, {0: "current", 1: "idle", 2: "idle", 3: "offline"}),
    ("0, 1-2(-)", 0, None, {0: "current", 1: "idle", 2: "idle"}),
    ("0(-), 1, 2-3(-)", 3, 4, {0: "idle", 1: "responding", 2: "idle", 3: "current"}),
])
def test_kdb_cpu_list(listed: str, current: int, ncpus: int | None, states: dict) -> None:
    got, problems = kdb.parse_cpu_list(listed, current, ncpus)
    assert got == states and not problems


@pytest.mark.parametrize("listed", ["0-1(?), 2", "0, 0", "x", "3-1"])
def test_kdb_cpu_list_problems(listed: str) -> None:
    assert kdb.parse_cpu_list(listed, None, 4)[1]


def test_kdb_infers_cpu_count_from_boot_log() -> None:
    text = ("[    0.152058][    T1] smp: Brought up 1 node, 4 CPUs\n"
            "Entering kdb (current=0xff60000000a6f400, pid 58) on processor 0 due to Keyboard Entry\n"
            "[0]kdb> cpu\nCurrently on cpu 0\nAvailable cpus: 0, 1-2(-)\n")
    assert kdb.parse(text).states == {0: "current", 1: "idle", 2: "idle", 3: "offline"}


# ----------------------------------------------------------------- reports

def test_titles_leave_out_numbers() -> None:
    a = reports.parse("[ 1.0][ T1] Kernel panic - not syncing: Attempted to kill init! "
                      "exitcode=0x0000000b\n")
    b = reports.parse("[ 9.0][ T1] Kernel panic - not syncing: Attempted to kill init! "
                      "exitcode=0x00000009\n")
    assert a[0].title == b[0].title == "kernel panic: Attempted to kill init! exitcode=NUM"


def test_same_bug_same_title_across_runs() -> None:
    # Every kdb log ends with the oops `go` causes; pids, CPUs, addresses
    # and timestamps differ between those runs, the title must not.
    titles = {r.title for p in CONSOLE.glob("kdb-btc-*.log") if "reverted" not in p.name
              for r in reports.parse(raw(p.name)) if r.type == reports.OOPS}
    assert len(titles) == 1
    assert titles.pop().startswith("BUG: unable to handle kernel access to user memory")


def test_guilty_frame_skips_helpers() -> None:
    hung, = [r for r in reports.parse(raw("lkdtm-hung-task.log")) if r.type == reports.HUNG_TASK]
    assert hung.guilty == "lkdtm_HUNG_TASK" and hung.cpu is None
    assert reports.SKIP.fullmatch("dump_stack_lvl") and reports.WEAK.fullmatch("schedule")
    assert not reports.SKIP.fullmatch("lkdtm_WARNING") and not reports.WEAK.fullmatch("lkdtm_BUG")
    assert reports.function_name("_nohz_idle_balance.isra.0+0x1f6/0x294") == "_nohz_idle_balance"


def test_noreturn_return_address_needs_the_map() -> None:
    text = raw("lkdtm-panic.log")
    panic, = [r for r in reports.parse(text) if r.type == reports.PANIC]
    with_map, = [r for r in reports.parse(text, SystemMap.load(MAP)) if r.type == reports.PANIC]
    # panic() never returns: the return address is lkdtm_PANIC's end, which
    # %pS prints as the next function +0x0.
    assert with_map.guilty == "lkdtm_PANIC"
    assert panic.guilty != "__lkdtm_REPORT_STACK_CANARY"


# --------------------------------------------------------------- symbolize

def _frames(kernel: str) -> list[tuple[str, str]]:
    """(address, symbol as printed) of every complete frame in the golden
    logs of one kernel build."""
    out = []
    for p in sorted(CONSOLE.glob("*.log")):
        head = p.read_bytes()[:600].decode("utf-8", errors="replace")
        if f"kernel: {kernel}," not in head:
            continue
        # Complete frames only: a derived log may end in a frame cut short.
        out += re.findall(r"\[<([0-9a-f]{16})>\] (\S+\+0x[0-9a-f]+/0x[0-9a-f]+)\r*\n",
                          raw(p.name))
    return out


KERNELS = ["default", "default-kgdb-fixed", "revert-backtrace", "revert-roundup"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_map_symbolizes_every_frame_as_the_kernel_printed_it(kernel: str) -> None:
    frames = _frames(kernel)
    assert len(frames) > 50
    m = SystemMap.load(DATA / f"riscv64-6.12.107-{kernel}.map")
    assert m is not None
    bad = [(a, s, m.format(a)) for a, s in frames if m.format(a) != s]
    assert not bad, bad[:5]


@pytest.mark.skipif(not FULL_MAP.is_file(), reason="no /tmp/kb/System.map on this machine")
def test_full_map_agrees_with_the_cut_one() -> None:
    full, cut = SystemMap.load(FULL_MAP), SystemMap.load(MAP)
    assert full is not None and cut is not None and len(full) > len(cut) > 50
    for a, _ in _frames("default")[:300]:
        assert full.format(a) == cut.format(a)


def test_map_edges() -> None:
    m = SystemMap.parse("ffffffff80000000 T _start\nffffffff80000010 t local_fn\n"
                        "ffffffff80000010 T global_fn\nffffffff80000020 W weak_fn\n"
                        "ffffffff80000020 T __strong\nffffffff80000030 D some_data\n"
                        "ffffffff80000040 T last\ngarbage line\nzzzz T bad\n")
    # Aliases as kallsyms orders them: file order between equals...
    assert m.format(0xffffffff80000012) == "local_fn+0x2/0x10"
    # ...but strong before weak, whatever the underscores.
    assert m.format("ffffffff80000021") == "__strong+0x1/0x10"
    assert m.lookup(0xffffffff80000035) is None                        # data, not text
    assert m.lookup(0xffffffff80000040) is None                        # no end for the last
    assert m.lookup(0x1000) is None and m.lookup("not hex") is None
    assert SystemMap.load("/nonexistent/System.map") is None


def test_addr2line_degrades_without_debug_info_or_tool(tmp_path: Path) -> None:
    with Addr2Line(tmp_path / "missing") as a2l:
        assert a2l.file_line(0xffffffff80004c14) is None and "vmlinux" in a2l.why_not
    with Addr2Line(MAP, tool="no-such-addr2line-tool") as a2l:
        assert a2l.file_line("ffffffff80004c14") is None and a2l.why_not == "no addr2line"
    assert not has_debug_info(MAP)
    if FULL_VMLINUX.is_file():
        # The default kernel is built with CONFIG_DEBUG_INFO_NONE.
        assert not has_debug_info(FULL_VMLINUX)
        with Symbolizer(MAP, FULL_VMLINUX) as s:
            got = s.symbolize("ffffffff80004c14")
            assert got == {"address": "ffffffff80004c14", "symbol": "walk_stackframe+0x0/0x6e",
                           "file_line": None}


@pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("addr2line")),
                    reason="needs the host gcc and addr2line")
def test_addr2line_one_process_with_cache(tmp_path: Path) -> None:
    src = tmp_path / "t.c"
    src.write_text("int twice(int x)\n{\n\treturn 2 * x;\n}\n\nint main(void)\n{\n"
                   "\treturn twice(3);\n}\n")
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-g", "-O0", "-o", str(exe), str(src)], check=True)
    assert has_debug_info(exe)
    nm = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    addr = int(next(ln.split()[0] for ln in nm.splitlines() if ln.endswith(" twice")), 16)
    with Addr2Line(exe, tool="addr2line") as a2l:
        first = a2l.lookup(addr)
        proc = a2l.proc
        assert first is not None and first[0] == "twice" and first[1].endswith("t.c:2")
        assert a2l.lookup(addr) == first and a2l.proc is proc      # cached, same process
        assert a2l.lookup(addr + 4) is not None and a2l.proc is proc
    assert proc is not None and proc.poll() is not None             # closed on exit


def test_enough_golden_files() -> None:
    assert len(list(CONSOLE.glob("*.log"))) >= 30


def test_every_report_type_can_be_expected_in_a_scenario() -> None:
    from harness.scenario.parse import REPORT_TYPES
    assert {rule.type for rule in reports.RULES} == set(REPORT_TYPES) - {"none"}


def test_cpu_hotplug_reports() -> None:
    # Lines from hotplug-online-latency runs (default kernel, 2 CPUs) and a
    # boot where CPU 1 missed the bring-up wait on a loaded host.
    log = ("[    1.376438][    T7] CPU1: off\n"
           "[    1.376866][    T7] HART1 isn't stopped; status 3\n"
           "[    1.377260][    T7] CPU1 may not have stopped\n"
           "[    1.144913][    T1] CPU1: failed to come online\n")
    found = [(r.type, r.title, r.cpu, r.first_line) for r in reports.parse(log)]
    assert found == [(reports.CPU_HOTPLUG, "CPU may not have stopped", 1, 3),
                     (reports.CPU_HOTPLUG, "CPU failed to come online", 1, 4)]
