"""How a shell command travels to the guest so that nothing in it can be
misread: not a `#`, an unbalanced quote, a here-document, 4 KB of text, a
trailing `&` or `\\`, nor a syntax error.

The command's text is never typed as shell syntax. It is written into a
file in the guest by busybox ash's `printf` builtin, whose format is
single-quoted and holds only printable ASCII: every byte that is a quote, a
backslash, a control character or not ASCII is sent as a three-digit octal
escape (`\\047`), and `%` as `%%`. A fixed wrapper then prints the start
sentinel, runs the file with `command .` in the console shell itself (so `$$`,
`cd` and background jobs behave as if typed) and prints the end sentinel with
the status, whatever the command was. The wrapper is three shell functions
(SHELL_RC), put into the initramfs and read by every console shell through
$ENV, so a command costs one short line:

    rvh_w 'echo "unbalanced\\012';rvh_r 7

docs/guest-commands.md has the measurements this relies on: `command .`
keeps a syntax error from abandoning the rest of the line (plain `.` and
`eval` do not), the line editor's and the tty's line limits (hence
LINE_PAYLOAD), and what a command costs.
"""
from __future__ import annotations

import re

TRANSFER_FILE = "/tmp/rvh.sh"
# Where the initramfs keeps SHELL_RC; images/init exports ENV with it.
SHELL_RC_PATH = "etc/rvh-shell.rc"
SHELL_RC = f"""\
# rvharness console protocol (harness/guest/console_wire.py): write, append, run.
rvh_w() {{ printf "$1" >{TRANSFER_FILE}; }}
rvh_a() {{ printf "$1" >>{TRANSFER_FILE}; }}
rvh_r() {{ printf '@RVH%s@\\n' "S$1"; command . {TRANSFER_FILE}; printf '@RVH%s@\\n' "E$1:$?"; }}
"""
# Characters of printf format per line: far below the line editor's and the
# canonical tty's limits, and a whole number of escapes per line.
LINE_PAYLOAD = 480
# images/init prints this when the console shell exits and starts another.
SHELL_RESTARTED = "rvharness: console shell exited, restarting"
# The shell rejecting the transferred file (not a command failing).
SYNTAX_ERROR = re.compile(rf"sh: {re.escape(TRANSFER_FILE)}: line (\d+): (syntax error: [^\r\n]*)")

# A kernel console line, which the kernel may write between two batches of
# the shell's output, i.e. in the middle of a sentinel: "[  12.3][  C1] text".
_KMSG_GAP = r"(?:\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])?[^\n]*\n)*"


def _marker(text: str) -> str:
    """A regex for text that tolerates kernel lines between its characters."""
    return _KMSG_GAP.join(re.escape(c) for c in text)


def start_pattern(seq: int) -> str:
    """The start sentinel of command seq, as printed by rvh_r. A kernel line
    can land between its last '@' and its newline too: the command's own
    printk ("Fair server disabled in CPU 1, ...", written at once by the
    echo into sched/fair_server) did, and the step was called a hang
    (hotplug-online-latency [without-csd-lock-diagnostics], CI rehearsal
    2026-12-07)."""
    return _marker(f"@RVHS{seq}@") + _KMSG_GAP + r"\r*\n"


def end_pattern(seq: int) -> str:
    """The end sentinel of command seq; status_of() reads its exit status
    (0-255: up to three digits, each group one of them)."""
    digits = r"(\d)" + f"(?:{_KMSG_GAP}(\\d))?" * 2
    return _marker(f"@RVHE{seq}:") + _KMSG_GAP + digits + _KMSG_GAP + "@"


def status_of(match: re.Match) -> int:
    return int("".join(d for d in match.groups() if d is not None))


_LITERAL = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"'", "\\", "%"}


def _tokens(text: str) -> list[str]:
    """printf format pieces that reproduce text byte for byte."""
    out: list[str] = []
    for ch in text:
        if ch in _LITERAL:
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
    return out


def _chunks(tokens: list[str]) -> list[str]:
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for t in tokens:
        if cur and size + len(t) > LINE_PAYLOAD:
            chunks.append("".join(cur))
            cur, size = [], 0
        if not cur and t == "-":
            t = "\\055"             # a format starting with '-' could read as an option
        cur.append(t)
        size += len(t)
    chunks.append("".join(cur))
    return chunks


def wire_lines(command: str, seq: int) -> list[str]:
    """The lines to type (without newlines) that run command as console
    command number seq; the last one starts it. The echoed lines hold no
    sentinel ('@RVH' is only in SHELL_RC), so only the shell's output matches."""
    chunks = _chunks(_tokens(command + "\n"))
    writes = [f"{'rvh_w' if i == 0 else 'rvh_a'} '{c}'" for i, c in enumerate(chunks)]
    return writes[:-1] + [f"{writes[-1]};rvh_r {seq}"]
