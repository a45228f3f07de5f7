"""kdb sessions on the console (kernel/debug/kdb): the `[N]kdb> ` prompt,
the `more> ` pager, "Currently on cpu N" / "Available cpus: ..." (kdb_cpu_status)
turned into one state per CPU, `btc`/`bt` tracebacks per CPU, and what `go`
answered.

kdb_cpu_status prints ranges of CPUs with the same state: ' ' responding
(no mark), '-' responding and running its idle task, 'D' online but never
rounded up, 'F' offline. Offline CPUs after the last online one are left
out, so telling them from "not in the log" needs the CPU count."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.parsers import klog
from harness.parsers.console_lines import Line
from harness.parsers.klog import Frame

CURRENT = "current"
RESPONDING = "responding"
IDLE = "idle"
UNRESPONSIVE = "unresponsive"
OFFLINE = "offline"
_MARKS = {"": RESPONDING, "-": IDLE, "D": UNRESPONSIVE, "F": OFFLINE}

_PROMPT = re.compile(r"(?:\[(\d{1,5})\])?kdb> ?")
_ENTER = re.compile(r"Entering kdb \((?:current=)?(0x[0-9a-f]{1,16}), pid (\d{1,10})\) "
                    r"(?:on processor (\d{1,5}) )?(?:due to (.{0,200}))?")
_CPU_ITEM = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?(?:\((.)\))?$")
_NCPUS = (re.compile(r"smp: Brought up \d+ nodes?, (\d{1,5}) CPUs?"),
          re.compile(r"rvharness-ready cpus=(\d{1,5})"))
_MORE = "more> "
# Kept per log and per session: a real log has a few; these bound what a
# corrupted one (a status line repeated a million times) can cost.
MAX_SESSIONS = 200
MAX_STATUSES = 16
_TOO_MANY = f"more than {MAX_SESSIONS} kdb sessions: the rest not kept"


@dataclass
class KdbTrace:
    """One "Stack traceback for pid P" block (btc, bt, btp)."""
    pid: int
    cpu: int | None = None
    comm: str | None = None
    state: str | None = None        # kdb_task_state_char: R, S, D, - (idle) ...
    current: bool = False           # '*': the task kdb runs on
    frames: list[Frame] = field(default_factory=list)
    command: str | None = None
    first_line: int = 0
    last_line: int = 0

    def to_json(self) -> dict:
        return {"pid": self.pid, "cpu": self.cpu, "comm": self.comm, "state": self.state,
                "current": self.current, "command": self.command,
                "frames": [str(f) for f in self.frames],
                "lines": [self.first_line, self.last_line]}


@dataclass
class CpuStatus:
    current: int | None
    states: dict[int, str]
    line: int
    listed: str = ""

    def to_json(self) -> dict:
        return {"current": self.current, "listed": self.listed, "line": self.line,
                "states": {str(c): s for c, s in sorted(self.states.items())}}


@dataclass
class KdbSession:
    cpu: int | None = None          # "on processor N"
    pid: int | None = None
    reason: str | None = None       # "Keyboard Entry", "NonMaskable Interrupt @ 0x...", ...
    first_line: int = 0
    last_line: int = 0
    commands: list[tuple[int | None, str, int]] = field(default_factory=list)  # cpu, cmd, line
    statuses: list[CpuStatus] = field(default_factory=list)
    traces: list[KdbTrace] = field(default_factory=list)
    no_task: list[int] = field(default_factory=list)        # "WARNING: no task for cpu N"
    no_process: list[int] = field(default_factory=list)     # "WARNING: no process for cpu N"
    go: list[str] = field(default_factory=list)     # refused, forced, wrong-cpu
    pager_prompts: int = 0
    notes: list[str] = field(default_factory=list)  # KGDB: kernel messages during the session

    @property
    def status(self) -> CpuStatus | None:
        return self.statuses[-1] if self.statuses else None

    def btc(self) -> dict[int, KdbTrace]:
        """Per CPU, the latest trace printed by `btc` or `btc N`."""
        return {t.cpu: t for t in self.traces
                if t.cpu is not None and (t.command or "").split()[:1] == ["btc"]}

    def to_json(self) -> dict:
        return {"cpu": self.cpu, "pid": self.pid, "reason": self.reason,
                "lines": [self.first_line, self.last_line],
                "commands": [{"cpu": c, "command": cmd, "line": ln} for c, cmd, ln in self.commands],
                "statuses": [s.to_json() for s in self.statuses],
                "traces": [t.to_json() for t in self.traces],
                "btc": {str(c): t.pid for c, t in sorted(self.btc().items())},
                "no_task": self.no_task, "no_process": self.no_process, "go": self.go,
                "pager_prompts": self.pager_prompts, "notes": self.notes}


@dataclass
class KdbReport:
    sessions: list[KdbSession] = field(default_factory=list)
    ncpus: int | None = None
    corrupted: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def states(self) -> dict[int, str]:
        """CPU states from the last status kdb printed."""
        for s in reversed(self.sessions):
            if s.status:
                return dict(s.status.states)
        return {}

    @property
    def go_refused(self) -> bool:
        return any("refused" in s.go for s in self.sessions)

    def flag(self, problem: str) -> None:
        self.corrupted = True
        if len(self.problems) < 20:
            self.problems.append(problem)

    def to_json(self) -> dict:
        return {"ncpus": self.ncpus, "corrupted": self.corrupted, "problems": list(self.problems),
                "states": {str(c): s for c, s in sorted(self.states.items())},
                "go_refused": self.go_refused,
                "sessions": [s.to_json() for s in self.sessions]}


def parse_cpu_list(listed: str, current: int | None, ncpus: int | None
                   ) -> tuple[dict[int, str], list[str]]:
    """'0-1(-), 2, 3(D)' -> {0: idle, 1: idle, 2: current, 3: unresponsive}."""
    states: dict[int, str] = {}
    problems: list[str] = []
    for item in listed.split(","):
        item = item.strip()
        if not item:
            continue
        m = _CPU_ITEM.match(item)
        if m is None:
            problems.append(f"unreadable cpu item {item[:40]!r}")
            continue
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        state = _MARKS.get(m.group(3) or "")
        if state is None or hi < lo or hi - lo > 4096:
            problems.append(f"unreadable cpu item {item[:40]!r}")
            continue
        if len(states) + hi - lo >= klog.MAX_CPUS:
            problems.append(f"more than {klog.MAX_CPUS} cpus listed")
            break
        for cpu in range(lo, hi + 1):
            if cpu in states:
                problems.append(f"cpu {cpu} listed twice")
                break
            states[cpu] = state
    if ncpus is not None and ncpus <= klog.MAX_CPUS:
        for cpu in range(ncpus):
            # Trailing offline CPUs are not printed at all.
            states.setdefault(cpu, OFFLINE)
    if current is not None:
        if states.get(current) in (OFFLINE, UNRESPONSIVE):
            problems.append(f"current cpu {current} listed as {states[current]}")
        states[current] = CURRENT
    return dict(sorted(states.items())), problems


def infer_ncpus(lines: list[Line]) -> int | None:
    for line in lines:
        if len(line.text) > 200 or "CPU" not in line.text and "cpus=" not in line.text:
            continue
        for pat in _NCPUS:
            if m := pat.search(line.text):
                return int(m.group(1))
    return None


class _KdbParser:
    def __init__(self, ncpus: int | None) -> None:
        self.report = KdbReport(ncpus=ncpus)
        self.session: KdbSession | None = None
        self.trace: KdbTrace | None = None
        self.command: str | None = None
        self.current: int | None = None     # from "Currently on cpu N", for the next list

    def ensure_session(self, line: Line) -> KdbSession:
        if self.session is None:
            # Output from kdb before any "Entering kdb" (the log starts mid-session).
            self.session = KdbSession(first_line=line.number)
            self.keep(self.session)
        return self.session

    def feed(self, line: Line) -> None:
        text = line.text
        if len(text) > klog.MAX_LINE:
            return
        while text.startswith(_MORE):
            # After `more> ` kdb writes CR and goes on on the same line.
            self.ensure_session(line).pager_prompts += 1
            text = text[len(_MORE):]
        msg = text.strip()
        if not msg:
            return
        if msg.startswith("Entering kdb ("):
            self.enter(line, msg)
            return
        if "kdb> " in msg[:12] or msg.endswith("kdb>"):
            m = _PROMPT.match(msg)
            if m is not None:
                self.prompt(line, m, msg[m.end():].strip())
                return
        if self.session is None:
            return
        self.body(line, msg)

    def enter(self, line: Line, msg: str) -> None:
        self.trace = None
        m = _ENTER.match(msg)
        s = KdbSession(first_line=line.number, last_line=line.number)
        if m is None:
            self.report.flag(f"line {line.number}: unreadable 'Entering kdb' line")
        else:
            s.pid = int(m.group(2))
            s.cpu = int(m.group(3)) if m.group(3) else None
            s.reason = m.group(4).strip() if m.group(4) else None
        self.session = s
        self.keep(s)

    def keep(self, s: KdbSession) -> None:
        if len(self.report.sessions) < MAX_SESSIONS:
            self.report.sessions.append(s)
        elif len(self.report.sessions) == MAX_SESSIONS and not self.report.problems[-1:] == [
                _TOO_MANY]:
            self.report.flag(_TOO_MANY)

    def prompt(self, line: Line, m: re.Match, command: str) -> None:
        s = self.ensure_session(line)
        self.trace = None
        cpu = int(m.group(1)) if m.group(1) else None
        if s.cpu is None:
            s.cpu = cpu
        s.last_line = line.number
        if command:
            s.commands.append((cpu, command, line.number))
        self.command = command or None

    def body(self, line: Line, msg: str) -> None:
        s = self.session
        assert s is not None
        if line.timestamp is not None:
            # printk output while kdb runs (e.g. "KGDB: Timed out waiting ...").
            if msg.startswith("KGDB:") and len(s.notes) < 20:
                s.notes.append(msg)
            return
        s.last_line = line.number
        if s.reason is None and msg.startswith("due to ") and not s.commands:
            # "Entering kdb (...) on processor 2 Oops: (null)" puts the
            # reason on the next line.
            s.reason = msg[len("due to "):][:200]
            return
        at = msg.find("Currently on cpu ")
        if at >= 0:
            tail = msg[at + len("Currently on cpu "):].strip()
            self.current = klog.small_int(tail, 5)
            if self.current is None:
                self.report.flag(f"line {line.number}: unreadable 'Currently on cpu'")
            return
        if msg.startswith("Available cpus:"):
            listed = msg[len("Available cpus:"):].strip()
            states, problems = parse_cpu_list(listed, self.current, self.report.ncpus)
            for p in problems:
                self.report.flag(f"line {line.number}: {p}")
            s.statuses.append(CpuStatus(self.current, states, line.number, listed))
            del s.statuses[:-MAX_STATUSES]
            self.current = None
            return
        if msg.startswith("Stack traceback for pid "):
            self.trace = None
            pid = klog.small_int(msg[len("Stack traceback for pid "):].strip())
            if pid is None:
                self.report.flag(f"line {line.number}: unreadable traceback header")
                return
            self.trace = KdbTrace(pid, command=self.command, first_line=line.number,
                                  last_line=line.number)
            s.traces.append(self.trace)
            return
        if msg.startswith("WARNING: no task for cpu ") or msg.startswith(
                "WARNING: no process for cpu "):
            self.trace = None
            n = klog.small_int(msg.rpartition(" ")[2], 5)
            if n is not None:
                (s.no_task if "task" in msg else s.no_process).append(n)
            return
        if "type go a second time" in msg:
            s.go.append("refused")
            return
        if "attempting to continue" in msg:
            s.go.append("forced")
            return
        if msg.startswith("go must execute on the entry cpu"):
            s.go.append("wrong-cpu")
            return
        if self.trace is not None:
            self.trace_line(line, msg)

    def trace_line(self, line: Line, msg: str) -> None:
        t = self.trace
        assert t is not None
        if t.last_line == t.first_line and msg.startswith("0x"):
            self.ps_line(line, msg)
            return
        if not klog.is_stack_line(msg):
            self.trace = None
            return
        t.last_line = line.number
        if frame := klog.parse_frame(msg):
            t.frames.append(frame)
        elif task := klog.parse_task_line(msg):
            if t.cpu is not None and t.cpu != task.cpu:
                self.report.flag(f"line {line.number}: pid {t.pid} on cpu {t.cpu} dumped by "
                                 f"cpu {task.cpu}")
            t.cpu = task.cpu
            t.comm = t.comm or task.comm

    def ps_line(self, line: Line, msg: str) -> None:
        """kdb_ps1: '0x<task> <pid> <ppid> <has_cpu> <cpu> <state> 0x<thread> [*]<comm>'."""
        t = self.trace
        assert t is not None
        t.last_line = line.number
        parts = msg.split()
        nums = [klog.small_int(p) for p in parts[1:5]]
        if len(parts) < 7 or None in nums:
            self.report.flag(f"line {line.number}: unreadable task line")
            return
        if nums[0] != t.pid:
            self.report.flag(f"line {line.number}: task line for pid {parts[1]} under pid {t.pid}")
        if nums[2] == 1:
            t.cpu = nums[3]
        t.state = parts[5]
        comm = " ".join(parts[7:]) if len(parts) > 7 else ""
        t.current = comm.startswith("*")
        t.comm = comm.lstrip("*") or None


def parse(text: str | list[Line], ncpus: int | None = None, truncated: bool | None = None
          ) -> KdbReport:
    """Every kdb session in the log. ncpus: the guest's CPU count, to tell
    trailing offline CPUs (omitted by kdb) apart; inferred from the boot
    log when it is there. truncated: whether the log was cut off mid-line
    (found from text when it is a str). Never raises."""
    lines = klog.lines_of(text)
    if ncpus is None:
        ncpus = infer_ncpus(lines)
    if truncated is None:
        truncated = klog.cut_off(text, lines)
    if truncated and lines:
        # "Available cpus: 0-1(-)" cut to "0-1" would read as responding.
        lines = lines[:-1]
    p = _KdbParser(ncpus)
    for line in lines:
        p.feed(line)
    return p.report
