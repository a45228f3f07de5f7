"""Kernel console lines as the parsers want them: console_lines.split plus
what a shared serial console adds, and shared pieces (frames, registers,
the task line) that several kinds of output print the same way.

Everything here is linear in the input and never raises on odd text."""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.parsers import console_lines, cpulist
from harness.parsers.console_lines import Line

# printk caps a record at 1024 bytes; anything much longer is not a kernel
# line, and skipping it keeps the per-line work bounded.
MAX_LINE = 2048

# A printk prefix after other text on the same line: the kernel printed
# while the shell's prompt (or its echo) was on the console.
_EMBEDDED = re.compile(r"\[ {0,12}\d{1,10}\.\d{6}\](?:\[ {0,8}[TC]\d{1,10}\])? ?")
_HEX = frozenset("0123456789abcdef")
# A shell prompt the kernel's text was printed after ("rvh# lkdtm: ...").
_PROMPT = re.compile(r"[\w@:~/.\-]{0,40}[#$] ")


def split(text: str) -> list[Line]:
    out: list[Line] = []
    for line in console_lines.split(text):
        if line.timestamp is None and "." in line.text and len(line.text) <= MAX_LINE:
            at = line.text.find("[")
            m = _EMBEDDED.search(line.text, at) if at >= 0 else None
            if m is not None:
                inner = console_lines.split(line.text[m.start():])[0]
                line = Line(line.number, inner.text, inner.timestamp, inner.caller)
        if line.caller is not None and len(line.caller) > 8:
            # "[C<5000 digits>]" is no CPU; int() of it would even raise.
            line = Line(line.number, line.text, line.timestamp, None)
        if line.timestamp is None and line.text[:1] not in ("", " ", "["):
            p = _PROMPT.match(line.text)
            if p is not None and p.end() < len(line.text):
                line = Line(line.number, line.text[p.end():], None, None)
        out.append(line)
    return out


def lines_of(text: str | list[Line]) -> list[Line]:
    """Parsers accept raw text or lines already split (observe splits once)."""
    return split(text) if isinstance(text, str) else text


CALLER = "caller"   # CONFIG_PRINTK_CALLER: every kernel line has [T<pid>] or [C<cpu>]
TIME = "time"       # timestamps only
PLAIN = "plain"     # no prefixes (stripped, or printk.time=0)


def mode(lines: list[Line]) -> str:
    """How kernel lines can be told from shell output and from each other."""
    timed = False
    for line in lines:
        if line.caller is not None:
            return CALLER
        timed = timed or line.timestamp is not None
    return TIME if timed else PLAIN


def is_kernel(line: Line, log_mode: str) -> bool:
    """Whether a line can be kernel output, given the log's mode."""
    if log_mode == CALLER:
        return line.caller is not None
    if log_mode == TIME:
        return line.timestamp is not None
    return True


def ends_mid_line(text: str | list[Line]) -> bool:
    """The log does not end with a newline (lines cannot tell: False)."""
    if isinstance(text, str):
        return bool(text) and not text.endswith("\n")
    return False


def cut_off(text: str | list[Line], lines: list[Line]) -> bool:
    """Whether the log was cut off in the middle of a kernel line (by a reset,
    a timeout, a slice). A log that ends at a shell or kdb prompt also lacks
    the final newline, but nothing was lost there."""
    if not lines or not ends_mid_line(text):
        return False
    last = lines[-1]
    if last.timestamp is not None:
        return True
    # kdb output has no printk prefix either; a prompt is the usual end.
    tail = last.text.rstrip()
    return bool(tail) and not tail.endswith(("#", "$", ">"))


# More CPUs than any kernel this harness boots (NR_CPUS is 8 here), small
# enough that junk cannot make a CPU list cost more than linear time.
MAX_CPUS = 512


def cpu_list(text: str) -> list[int] | None:
    """cpulist.parse, refused up front when the list would expand to more
    than MAX_CPUS entries (e.g. "0-4095," repeated by a corrupted line)."""
    if len(text) > 512:
        return None
    total = 0
    for item in text.split(","):
        lo, dash, hi = item.partition("-")
        a, b = small_int(lo.strip(), 5), small_int(hi.strip(), 5) if dash else None
        if a is None:
            return None
        total += (b - a + 1) if b is not None and b >= a else 1
        if total > MAX_CPUS:
            return None
    return cpulist.parse(text)


def small_int(s: str, digits: int = 10) -> int | None:
    """An ASCII decimal of at most digits digits, else None (str.isdigit()
    accepts '²', which int() rejects)."""
    if s and len(s) <= digits and s.isascii() and s.isdigit():
        return int(s)
    return None


def is_hex(s: str) -> bool:
    return bool(s) and all(c in _HEX for c in s)


@dataclass
class Frame:
    address: str
    function: str
    offset: str | None = None
    size: str | None = None
    module: str | None = None
    partial: bool = False       # the line was cut off: function name may be short
    # x86-64's "? func+0x.." frames: found on the stack, not proven by the
    # unwinder to be a return address (arch/x86/kernel/dumpstack.c).
    reliable: bool = True

    def __str__(self) -> str:
        text = f"{self.function}+{self.offset}/{self.size}" if self.offset else self.function
        return f"{text} [{self.module}]" if self.module else text


def parse_symbol(text: str) -> tuple[str, str | None, str | None] | None:
    """'func+0x1e/0x2a' -> (func, '0x1e', '0x2a'); a bare name has no offset."""
    if not text or len(text) > 512:
        return None
    name, plus, rest = text.partition("+")
    if not name:
        return None
    if not plus:
        return name, None, None
    off, slash, size = rest.partition("/")
    if (not slash or not off.startswith("0x") or not size.startswith("0x")
            or not is_hex(off[2:]) or not is_hex(size[2:])):
        return None
    return name, off, size


def _bare_frame(msg: str) -> Frame | None:
    """A frame printed without its address: arm64's dump_backtrace()
    ('  lkdtm_HARDLOCKUP+0x10/0x20' or '... [lkdtm]', %pSb) and x86-64's
    show_trace_log_lvl() (' lkdtm_do_action+0x1c/0x30', ' ? __die+0x1e/0x60'
    for an unreliable one). Only a complete 'func+0xoff/0xsize' counts: a
    bare word would match any line."""
    s = msg.strip()
    reliable = True
    if s.startswith("? "):
        s, reliable = s[2:], False
    module = None
    if s.endswith("]") and " [" in s:
        s, _, mod = s.rpartition(" [")
        module = mod[:-1]
    if not s or " " in s or "+0x" not in s:
        return None
    sym = parse_symbol(s)
    if sym is None or sym[1] is None:
        return None
    return Frame("", sym[0], sym[1], sym[2], module, reliable=reliable)


def parse_frame(msg: str) -> Frame | None:
    """'[<ffffffff80004c14>] walk_stackframe+0x0/0x6e [mod]' (print_ip_sym),
    or a frame without address (_bare_frame: arm64, x86-64).
    Hand-written rather than a regex so that junk costs linear time."""
    if not msg.startswith("[<"):
        return _bare_frame(msg) if len(msg) <= 512 else None
    end = msg.find(">]", 2, 40)
    if end < 0 or not is_hex(msg[2:end]):
        return None
    rest = msg[end + 2:].strip()
    module = None
    if rest.endswith("]") and " [" in rest:
        rest, _, mod = rest.rpartition(" [")
        module = mod[:-1]
    if not rest or " " in rest:
        return None
    sym = parse_symbol(rest)
    if sym is None:
        # 'func+0x1' with the tail cut off, or a symbol-less address.
        name = rest.partition("+")[0]
        return Frame(msg[2:end], name or rest, module=module, partial=True)
    # %pS always prints +off/size for a known symbol: without it the line
    # was cut, unless it is a bare address kallsyms could not name.
    partial = sym[1] is None and not sym[0].startswith("0x")
    return Frame(msg[2:end], sym[0], sym[1], sym[2], module, partial)


_REG = re.compile(r"([a-z][a-z0-9]{0,7}) ?: ([0-9a-f]{16})\b")
_REG_NAMES = frozenset(["epc", "ra", "sp", "gp", "tp", "status", "badaddr", "cause"]
                       + [f"t{i}" for i in range(7)] + [f"s{i}" for i in range(12)]
                       + [f"a{i}" for i in range(8)]
                       # arm64 __show_regs: 'sp : ffff8000...', 'x29: ... x28: ...'
                       + [f"x{i}" for i in range(31)]
                       # arm64 prints pc/lr in hex when they are user addresses
                       + ["pc", "lr"])
# x86-64 __show_regs: 'RSP: 0018:ffffc90000013d48 EFLAGS: 00010246', 'RAX: ... RBX: ...'
_X86_REG = re.compile(r"\b(R[A-Z0-9]{1,3}|EFLAGS): (?:[0-9a-f]{4}:)?([0-9a-f]{8,16})\b")


def parse_registers(msg: str) -> dict[str, str]:
    """Register dump lines: RISC-V ' gp : ffffffff8035b630 tp : ... t0 : ...',
    arm64 'x29: ffff80008003bd40 x28: ...', x86-64 'RAX: ... RBX: ...'."""
    if len(msg) > 200:
        return {}
    regs = {m.group(1): m.group(2) for m in _REG.finditer(msg) if m.group(1) in _REG_NAMES}
    if not regs and ": " in msg:
        regs = {m.group(1).lower(): m.group(2) for m in _X86_REG.finditer(msg)}
    return regs


# The symbolic program counter and return address each arch's show_regs
# prints (%pS): (prefix, role). Roles: PC, RA.
PC, RA = "pc", "ra"
_SYMBOLIC = (("epc : ", PC), ("ra : ", RA),            # RISC-V
             ("pc : ", PC), ("lr : ", RA),             # arm64
             ("RIP: ", PC))                            # x86-64, 'RIP: 0010:func+0x../0x..'


def symbolic_register(msg: str) -> tuple[str, str] | None:
    """(PC or RA, symbol) from 'epc : tick_nohz_idle_exit+0x90/0x9c', ' ra : ...',
    arm64 'pc : lkdtm_HARDLOCKUP+0x10/0x20', 'lr : ...', x86-64
    'RIP: 0010:lkdtm_BUG+0x5/0x10'. A hex value (no symbol) is not one."""
    s = msg.strip()
    for prefix, role in _SYMBOLIC:
        if s.startswith(prefix):
            value = s[len(prefix):].strip()
            if prefix == "RIP: ":
                seg, colon, rest = value.partition(":")
                if not colon or not is_hex(seg):
                    return None
                value = rest
            if value and " " not in value and not is_hex(value):
                return role, value
            return None
    return None


@dataclass
class TaskLine:
    cpu: int
    pid: int
    comm: str
    tainted: str


def parse_task_line(msg: str) -> TaskLine | None:
    """dump_stack_print_info: 'CPU: 1 UID: 0 PID: 58 Comm: sh Not tainted 6.12.107 #1'."""
    if not msg.startswith("CPU: ") or len(msg) > 400:
        return None
    parts = msg.split()
    try:
        cpu = small_int(parts[1], 5)
        pid = small_int(parts[parts.index("PID:") + 1])
        comm = parts[parts.index("Comm:") + 1]
    except (ValueError, IndexError):
        return None
    if cpu is None or pid is None:
        return None
    tainted = "Not tainted" if "Not tainted" in msg else (
        parts[parts.index("Tainted:") + 1] if "Tainted:" in parts[:-1] else "")
    return TaskLine(cpu, pid, comm, tainted)


def is_stack_line(msg: str) -> bool:
    """Lines a register dump or stack trace is made of, in any order."""
    if msg.startswith(("[<", "Call Trace:", "Hardware name:", "Workqueue:", "Stopper:",
                       "Tainted: ", "status: ", "epc : ", "ra : ", "Code: ",
                       # arm64
                       "Call trace:", "pc : ", "lr : ", "sp : ", "pstate: ",
                       # x86-64
                       "RIP: ", "Code: ", "<TASK>", "</TASK>", "<IRQ>", "</IRQ>", "<NMI>", "</NMI>")):
        return True
    if msg.startswith("CPU: ") and " PID: " in msg:
        return True
    if len(parse_registers(msg)) >= 2:
        return True
    return _bare_frame(msg) is not None if len(msg) <= 512 else False
