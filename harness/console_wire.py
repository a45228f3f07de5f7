"""How a shell command travels to the guest so that nothing in it can be
misread: not a `#`, an unbalanced quote, a here-document, 4 KB of text, a
trailing `&` or `\\`, nor a syntax error.

The command's text is never typed as shell syntax. It is written into a
file in the guest by busybox ash's `printf` builtin, whose format string is
single-quoted and holds only printable ASCII: every byte that is a quote, a
backslash, a control character or not ASCII is sent as a three-digit octal
escape (`\\047`), and `%` as `%%`. A fixed wrapper line then prints the start
sentinel, runs the file with `command .` in the console shell itself (so `$$`,
`cd` and background jobs behave as if typed) and prints the end sentinel with
the status, whatever the command was:

    printf 'echo "unbalanced\\012' >/tmp/rvh.sh; printf '@RVH%s@\\n' S7; \\
        command . /tmp/rvh.sh; printf '@RVH%s@\\n' "E7:$?"

Measured with Debian's busybox 1.37.0 ash in the guest (tests/test_console_wire.py):
- `command .` keeps a syntax error in the file from aborting the rest of the
  line (plain `.` or `eval` abort it, and the end sentinel is lost): the shell
  prints `sh: /tmp/rvh.sh: line N: syntax error: ...` and `$?` is 2;
- the interactive line editor wraps echoed input at 80 columns and its line
  buffer is limited, the tty's canonical buffer is 4095 bytes: so the file is
  written LINE_PAYLOAD characters of format at a time, one `printf` per line;
- `printf`, the redirections and `command .` are builtins: the transfer forks
  no process, and a short command still takes one line.
Commands that end the shell itself (`exit`, `exec`) make init restart it with
SHELL_RESTARTED: that is reported as what it is, not as a hung guest.
"""
from __future__ import annotations

import re

TRANSFER_FILE = "/tmp/rvh.sh"
# Characters of printf format per line: far below the line editor's and the
# canonical tty's limits, and a whole number of escapes per line.
LINE_PAYLOAD = 480
# images/init prints this when the console shell exits and starts another.
SHELL_RESTARTED = "rvharness: console shell exited, restarting"
# The shell rejecting the transferred file (not a command failing).
SYNTAX_ERROR = re.compile(rf"sh: {re.escape(TRANSFER_FILE)}: line (\d+): (syntax error: [^\r\n]*)")

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
    command number seq; the last one carries the sentinels."""
    chunks = _chunks(_tokens(command + "\n"))
    writes = [f"printf '{c}' {'>' if i == 0 else '>>'}{TRANSFER_FILE}" for i, c in enumerate(chunks)]
    # The format splits each marker in the echoed input ('@RVH%s@' is not
    # '@RVHS7@'), so only the shell's output matches the patterns.
    run = (f"printf '@RVH%s@\\n' S{seq}; command . {TRANSFER_FILE}; "
           f"printf '@RVH%s@\\n' \"E{seq}:$?\"")
    return writes[:-1] + [f"{writes[-1]}; {run}"]

