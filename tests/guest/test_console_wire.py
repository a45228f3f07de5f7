"""Shell commands reach the guest intact, whatever they hold: the transfer
(console_wire) on its own, then on a real guest through Console.run and
through a whole `rvharness run`."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from helpers import rvharness
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.arch import RISCV64
from harness.core.errors import GuestCommandRejected
from harness.guest.console_wire import LINE_PAYLOAD, wire_lines
from harness.guest.machine import Machine, MachineSpec


def decode(lines: list[str]) -> str:
    """What busybox printf writes for the lines' formats: the inverse of
    the encoding, done independently of it."""
    out = b""
    for line in lines:
        m = re.fullmatch(r"rvh_([wa]) '([^']*)'(;rvh_r \d+)?", line)
        assert m is not None, line
        fmt = m.group(2)
        assert ("\\" not in re.sub(r"\\[0-7]{3}", "", fmt)) and "%" not in fmt.replace("%%", "")
        piece = re.sub(rb"\\([0-7]{3})", lambda b: bytes([int(b.group(1), 8)]),
                       fmt.replace("%%", "%").encode("ascii"))
        out = piece if m.group(1) == "w" else out + piece
    return out.decode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
               min_size=1, max_size=3000))
def test_any_text_round_trips_through_printable_lines(command: str) -> None:
    lines = wire_lines(command, 7)
    assert decode(lines) == command + "\n"
    for line in lines:
        assert line.isascii() and line.isprintable(), line
        assert len(line) <= LINE_PAYLOAD + 120
    assert lines[-1].endswith("';rvh_r 7") and not any("rvh_r" in l for l in lines[:-1])
    assert [l[:6] for l in lines] == ["rvh_w "] + ["rvh_a "] * (len(lines) - 1)
    assert not any(l[6:8] == "'-" for l in lines)


def test_short_command_is_one_line_and_readable() -> None:
    (line,) = wire_lines("sleep 1000", 3)
    assert line == "rvh_w 'sleep 1000\\012';rvh_r 3"
    assert "@RVH" not in line           # only the shell's output can match a sentinel


# ------------------------------------------------------------------ on a real guest

NASTY = {
    "hash": ("echo visible # echo hidden", 0, "visible\n"),
    "unbalanced-quote-in-comment": ("echo ok # it's", 0, "ok\n"),
    "heredoc": ("cat <<'EOF'\nline one # not a comment\n\"quoted' $HOME\nEOF", 0,
                "line one # not a comment\n\"quoted' $HOME\n"),
    # A file ending in a backslash and the newline: a line continuation.
    "trailing-backslash": ("echo tail \\", 0, "tail\n"),
    "sentinel-lookalike": ("echo '@RVHE999:0@' \"@RVHS999@\"", 0, "@RVHE999:0@ @RVHS999@\n"),
    "percent-and-escapes": ("printf '%s|%%|\\\\n\\n' x", 0, "x|%|\\n\n"),
    "unicode-and-tab": ("echo 'é ✓\tend'", 0, "é ✓\tend\n"),
    "status": ("sh -c 'exit 7'", 7, ""),
    "dollar-dollar-is-the-console-shell": ("[ $$ = \"$(cat /proc/$$/stat | cut -d' ' -f1)\" ] && "
                                           "readlink /proc/$$/exe", 0, "/bin/busybox\n"),
}


@pytest.fixture(scope="module")
def guest(default_kernel, initrd, tmp_path_factory):
    spec = MachineSpec(RISCV64, default_kernel.image, initrd, cpus=2)
    with Machine(spec, tmp_path_factory.mktemp("wire")) as m:
        m.boot()
        yield m


@pytest.mark.integration
def test_nasty_commands_run_intact(guest) -> None:
    con = guest.console
    for name, (command, status, output) in NASTY.items():
        r = con.run(command, 20)
        assert (r.status, r.output) == (status, output), name
    # Ending in '&' (a list already ended): runs in the background. `wait`
    # takes the console shell's "[1]+ Done" job notice, which would
    # otherwise land in whichever command runs when the job ends.
    for command in ("sleep 0.2 & echo started $!", "sleep 0.1 &"):
        r = con.run(command, 20)
        assert r.status == 0 and re.fullmatch(r"(started \d+\n)?", r.output), command
        assert con.run("wait", 20).status == 0
    assert con.run("echo after").output == "after\n"


@pytest.mark.integration
def test_4k_command(guest) -> None:
    # More than the tty's 4095-byte canonical line; the old one-line protocol
    # lost the end of a 1000-byte line (the line editor cut it) and hung.
    con = guest.console
    word = "x" * 4076
    r = con.run(f"echo {word} | wc -c", 30)
    assert r.status == 0 and r.output.strip() == str(len(word) + 1)


@pytest.mark.integration
def test_syntax_error_is_the_shells_message_and_console_stays_usable(guest) -> None:
    con = guest.console
    t0 = time.monotonic()
    with pytest.raises(GuestCommandRejected, match=r"sh: /tmp/rvh.sh: line \d+: syntax error: unterminated quoted string"):
        con.run('echo "never closed', 20)
    assert time.monotonic() - t0 < 10        # not a 20 s "guest hung"
    with pytest.raises(GuestCommandRejected, match=r"syntax error"):
        con.run("if true; then echo x", 20)
    # The shell's exit hangs the tty up, which may drop the start sentinel
    # still in its output buffer (seen once in CI-like load): either way it
    # is "ended the console shell", never a timeout.
    for _ in range(3):
        with pytest.raises(GuestCommandRejected, match=r"ended the console shell"):
            con.run("exit 3", 20)
    assert con.run("echo still here").output == "still here\n"


SCENARIO = """\
name: wire
machine: {cpus: 2}
steps:
  - name: nasty
    shell: |
      echo start # comment
      cat <<EOF
      it's "here"
      EOF
  - name: rejected
    shell: 'echo "oops'
  - name: never
    shell: 'echo not reached'
expect:
  - console: {step: nasty, present: "it's \\"here\\""}
"""


@pytest.mark.integration
def test_rejected_command_is_a_scenario_error_with_the_shells_message(default_kernel, tmp_path: Path) -> None:
    scn = tmp_path / "wire.yaml"
    scn.write_text(SCENARIO)
    out = tmp_path / "out"
    proc = rvharness("run", str(scn), "--out", str(out), timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    art = out / "default" / "wire"
    verdict = json.loads((art / "verdicts.json").read_text())
    assert verdict["verdict"] == "error"
    assert re.search(r"sh: /tmp/rvh.sh: line \d+: syntax error: unterminated quoted string", verdict["reason"])
    assert "guest hung" not in verdict["reason"]
    obs = json.loads((art / "observations.json").read_text())
    assert obs["steps"]["nasty"]["output"] == "start\nit's \"here\"\n"
    assert "never" not in obs["steps"]
    log = (art / "console.log").read_text()
    assert "syntax error" in log and "not reached" not in log.replace("printf 'echo not reached", "")


def _played_back(tmp_path: Path, text: str, seq: int, timeout: float):
    """The console result of command seq when the guest's console printed
    text: played back by a real process through pexpect, as QEMU's console is."""
    import pexpect

    from harness.guest.console import Console, Pending
    from harness.guest.transcript import Transcript

    transcript = tmp_path / "t.txt"
    transcript.write_text(text)
    with open(tmp_path / "console.log", "w") as fh:
        child = pexpect.spawn("cat", [str(transcript)], encoding="utf-8", timeout=None)
        try:
            child.logfile_read = tee = Transcript(fh)
            con = Console(child, tee, ["cat"], tmp_path / "console.log")
            return con.finish(Pending("x", seq, 0, time.monotonic()), timeout)
        finally:
            child.close(force=True)


def test_sentinels_survive_kernel_lines_printed_inside_them(tmp_path: Path) -> None:
    # The kernel writes its console lines straight to the UART, between two
    # batches of the shell's output: a line can land inside a sentinel.
    kmsg = "[   12.345678][    C1] rcu: INFO: rcu_sched self-detected stall on CPU\r\n"
    r = _played_back(tmp_path, "@RVH" + kmsg + "S5@\r\nout one\r\n" + kmsg + "out two\r\n"
                     "@RVHE5" + kmsg + ":1" + kmsg + "3@\r\n", 5, 10)
    assert r.status == 13
    assert r.output == "out one\nout two\n" and "rcu_sched" in r.raw


def test_start_sentinel_survives_a_kernel_line_before_its_newline(tmp_path: Path) -> None:
    """The console of that run, cut down: the command's own printk came
    between the start sentinel and its newline."""
    kmsg = "[    0.879411][   T41] Fair server disabled in CPU 1, system may crash due to starvation.\r\n"
    r = _played_back(tmp_path, "@RVHS3@" + kmsg + "\r\n@RVHE3:0@\r\n", 3, 5)
    assert r.status == 0 and r.output == ""
