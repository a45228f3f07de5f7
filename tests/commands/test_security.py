"""What a hostile or careless input must not do: a patch reaching outside the
kernel tree, QEMU options opening host files, scenario names escaping the
artifact directory, a repeat bomb, and helper processes outliving a killed
harness. Everything here runs the real code on real files and processes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, RVHARNESS, qemu_pids_mentioning, rvharness

from harness.core.arch import RISCV64
from harness.core.errors import InputError, MachineError
from harness.guest import qemuargs
from harness.guest.machine import Machine, MachineSpec
from harness.kernel import kbuild, patchpaths
from harness.kernel.recipe import load_recipe
from harness.scenario import limits as scenario_limits
from harness.scenario import parse as scenario

# ------------------------------------------------------------------ patches

EVIL = """\
Subject: [PATCH] looks harmless

--- a/../../victim.txt
+++ b/../../victim.txt
@@ -1 +1 @@
-precious
+owned
"""

BENIGN = """\
--- a/kernel/smp.c
+++ b/kernel/smp.c
@@ -1,3 +1,3 @@
 line1
-line2
+line2 patched
 line3
"""


def _fake_source(tmp_path: Path) -> kbuild.ResolvedSource:
    root = tmp_path / "src" / "linux"
    (root / "kernel").mkdir(parents=True)
    (root / "kernel" / "smp.c").write_text("line1\nline2\nline3\n")
    (root / "Makefile").write_text("all:\n")
    return kbuild.ResolvedSource("test:fake", root)


def _victim(work: Path) -> Path:
    """The file '../../victim.txt' names from the slot's tree (work/linux)."""
    v = work.parent / "victim.txt"
    v.parent.mkdir(parents=True, exist_ok=True)
    v.write_text("precious\n")
    return v


def test_patch_naming_parent_paths_never_touches_outside_the_tree(tmp_path: Path) -> None:
    resolved = _fake_source(tmp_path)
    work = tmp_path / "cache" / "work" / "slot"
    victim = _victim(work)
    evil, benign = tmp_path / "evil.patch", tmp_path / "benign.patch"
    evil.write_text(EVIL)
    benign.write_text(BENIGN)
    log = tmp_path / "build.log"
    with pytest.raises(InputError) as err:
        kbuild._work_tree(resolved, work, (evil,), log)
    msg = str(err.value)
    assert msg.startswith(f"{evil}:3: ") and "'a/../../victim.txt'" in msg, msg
    assert "\n" not in msg
    # The next build (other patches) used to undo the recorded names: it
    # deleted the victim and copied the pristine tree's file over it.
    tree = kbuild._work_tree(resolved, work, (benign,), log)
    assert victim.read_text() == "precious\n"
    assert "victim" not in (work / "applied.json").read_text()
    assert (tree / "kernel" / "smp.c").read_text() == "line1\nline2 patched\nline3\n"


def test_stale_state_naming_outside_files_is_not_undone(tmp_path: Path) -> None:
    # A state file written before names were checked: the restore loop
    # itself must refuse to delete outside the tree.
    resolved = _fake_source(tmp_path)
    work = tmp_path / "cache" / "work" / "slot"
    victim = _victim(work)
    benign = tmp_path / "benign.patch"
    benign.write_text(BENIGN)
    kbuild._work_tree(resolved, work, (), tmp_path / "log")
    (work / "applied.json").write_text(json.dumps(
        {"patches": None, "files": ["../../victim.txt", str(victim), "kernel/smp.c"]}))
    kbuild._work_tree(resolved, work, (benign,), tmp_path / "log")
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("text,line,fragment", [
    (EVIL, 3, "'a/../../victim.txt', a '..' component"),
    ("--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", 1, "'/etc/passwd', an absolute path"),
    ("diff --git a/x b/../../x\n", 1, "'b/../../x'"),
    ("diff --git a/k b/k\nsimilarity index 90%\nrename from k\nrename to ../../../etc/x\n", 4,
     "'rename to' names '../../../etc/x'"),
    ('--- "a/\\056\\056/\\056\\056/v"\n+++ b/ok\n', 1, "'a/../../v'"),      # C-quoted dots
    ("--- a/x\t2024-01-01\n+++ b/../x 2024-01-01 10:00\n", 2, "a '..' component"),
    ("*** a/../x\n--- b/x\n", 1, "'***' names 'a/../x'"),
    ("Index: ../../x\n--- a/x\n+++ b/x\n", 1, "'Index:' names '../../x'"),
    ("diff --git a/l b/l\nnew file mode 120000\n", 2, "symbolic link"),
])
def test_unsafe_patch_headers_refused_with_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    p = tmp_path / "p.patch"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        patchpaths.check(p)
    assert err.value.path == p and err.value.line == line, str(err.value)
    assert fragment in str(err.value), str(err.value)


def test_hunk_content_is_not_a_header(tmp_path: Path) -> None:
    # Removed and added lines that look like headers ("-- ../x" removed is
    # "--- ../x") sit inside a counted hunk: content, not file names.
    p = tmp_path / "p.patch"
    p.write_text("--- a/doc.txt\n+++ b/doc.txt\n@@ -1,2 +1,2 @@\n--- ../../etc/shadow\n"
                 "+++ /etc/passwd\n ctx\n")
    assert patchpaths.targets(p) == ["doc.txt"]


def test_shipped_patches_pass() -> None:
    for p in sorted((ROOT / "kernels" / "patches").glob("*.patch")):
        assert patchpaths.targets(p), p


def _recipe_with(tmp_path: Path, patch_text: str) -> tuple[Path, Path]:
    patch = tmp_path / "evil.patch"
    patch.write_text(patch_text)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"source: {{tree: {tmp_path}}}\npatches:\n  - evil.patch\n")
    return recipe, patch


def test_recipe_with_unsafe_patch_refused_at_load(tmp_path: Path) -> None:
    recipe, patch = _recipe_with(tmp_path, EVIL)
    with pytest.raises(InputError) as err:
        load_recipe(recipe)
    assert err.value.path == patch and err.value.line == 3


def test_cli_refuses_unsafe_patch_before_building(tmp_path: Path) -> None:
    recipe, patch = _recipe_with(tmp_path, EVIL)
    proc = rvharness("check", "--kernel", str(recipe), "scenarios/backtrace-ipi.yaml", timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"rvharness: error: {patch}:3: '---' names 'a/../../victim.txt', a '..' component: "
        "a patch may only name files inside the kernel tree"], proc.stderr
    # --patch on the command line: refused before the (cached) build starts,
    # with a cache of its own so that nothing shared could be touched.
    env = {**os.environ, "RVHARNESS_CACHE": str(tmp_path / "cache")}
    t0 = time.monotonic()
    proc = rvharness("build", "kernels/default.yaml", "--patch", str(patch), env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{patch}:3: " in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "cache" / "work").exists()


# ------------------------------------------------------------------ scenarios

def _scenario(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _load_error(path: Path) -> InputError:
    with pytest.raises(InputError) as err:
        scenario.load(path)
    return err.value


REFUSED_QEMU_ARGS = [
    ["-drive", "file=/etc/passwd,format=raw,if=virtio"],
    ["-chardev", "file,id=c0,path=/tmp/rvh-out"],
    ["-monitor", "unix:/tmp/rvh-mon,server=on,wait=off"],
    ["-serial", "file:/tmp/rvh-serial"],
    ["-qmp", "tcp:127.0.0.1:4444,server=on,wait=off"],
    ["-incoming", "exec:cat /etc/shadow"],
    ["-loadvm", "snap"],
    ["-object", "memory-backend-file,id=m0,size=64M,mem-path=/tmp"],
    ["-device", "loader,file=/etc/passwd,addr=0x80000000"],
    ["-fsdev", "local,id=f0,path=/,security_model=none"],
    ["-netdev", "user,id=n0,hostfwd=tcp::2222-:22"],
    ["-plugin", "/tmp/evil.so"],
    ["-trace", "file=/tmp/trace"],
    ["-D", "/tmp/qemu.log"],
    ["-readconfig", "/tmp/qemu.cfg"],
    ["-add-fd", "fd=3,set=1"],
    ["/tmp/disk.img"],                                   # a bare argument is a disk image
    ["-machine", "dumpdtb=/tmp/virt.dtb"],
    ["-M", "virt,dtb=/tmp/other.dtb"],
    ["-icount", "shift=1,rr=record,rrfile=/tmp/replay.bin"],
    ["-cpu", "rv64,,socket=/tmp/s"],
    ["-cpu max"],
    ["--drive", "file=/etc/passwd"],
    ["-cpu"],
]


@pytest.mark.parametrize("args", REFUSED_QEMU_ARGS, ids=lambda a: " ".join(a)[:40])
def test_qemu_args_outside_the_allow_list_are_refused(tmp_path: Path, args: list[str]) -> None:
    items = "".join(f"    - {json.dumps(a)}\n" for a in args)
    p = _scenario(tmp_path, f"machine:\n  qemu_args:\n{items}steps:\n  - shell: 'true'\n")
    err = _load_error(p)
    assert err.path == p and err.line is not None and 3 <= err.line <= 2 + len(args), str(err)
    assert "qemu_args" in str(err)


def test_qemu_args_allow_list_accepts_documented_options(tmp_path: Path) -> None:
    args = ["-cpu", "rv64,sv39=on", "-machine", "aia=aplic-imsic,aia-guests=2", "-M", "aclint=on",
            "-accel", "tcg,thread=single,tb-size=64", "-icount", "shift=auto,sleep=off",
            "-rtc", "base=2024-01-02T03:04:05,clock=vm"]
    items = "".join(f"    - {json.dumps(a)}\n" for a in args)
    p = _scenario(tmp_path, f"machine:\n  qemu_args:\n{items}steps:\n  - shell: 'true'\n")
    assert scenario.load(p).machine.qemu_args == tuple(args)
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    for opt in qemuargs.ALLOWED:
        assert f"`{opt}" in doc, f"{opt} is allowed but not documented in docs/scenarios.md"


def test_check_refuses_qemu_args_with_file_and_line(tmp_path: Path) -> None:
    p = _scenario(tmp_path, "machine:\n  cpus: 2\n  qemu_args: [-serial, 'file:/tmp/x']\nsteps:\n  - shell: 'true'\n")
    proc = rvharness("check", str(p), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"rvharness: error: {p}:3:") and "'-serial' is not allowed" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_machine_refuses_unsafe_qemu_args_at_run_time(tmp_path: Path) -> None:
    # A MachineSpec built in code, not loaded from a scenario: QEMU never starts.
    spec = MachineSpec(RISCV64, tmp_path / "Image", tmp_path / "initrd",
                       qemu_args=("-serial", f"file:{tmp_path / 'leak'}"))
    with pytest.raises(MachineError, match=r"qemu_args\[0\].*'-serial' is not allowed"):
        Machine(spec, tmp_path / "art").start()
    assert not (tmp_path / "leak").exists() and not (tmp_path / "art" / "qemu.argv").exists()


@pytest.mark.parametrize("name,line", [("..", 1), ("a/b", 1), ("", 1), (".hidden", 1),
                                       ("a\\0b", 1), ("-rf", 1), ("x" * 101, 1)])
def test_scenario_names_must_be_plain_file_names(tmp_path: Path, name: str, line: int) -> None:
    p = _scenario(tmp_path, f'name: "{name}"\nsteps:\n  - shell: "true"\n')
    err = _load_error(p)
    assert err.path == p and err.line == line and "not a plain file name" in str(err), str(err)


def test_name_from_a_hidden_file_name_is_refused(tmp_path: Path) -> None:
    p = _scenario(tmp_path, "steps:\n  - shell: 'true'\n", name=".hidden.yaml")
    assert "add a 'name:'" in str(_load_error(p))


def test_two_scenarios_with_one_name_are_an_error_naming_both(tmp_path: Path) -> None:
    a = _scenario(tmp_path, "name: same\nsteps:\n  - shell: 'true'\n", name="a.yaml")
    b = _scenario(tmp_path, "name: same\nsteps:\n  - shell: 'false'\n", name="b.yaml")
    for cmd in (["check", str(tmp_path)], ["run", str(tmp_path), "--out", str(tmp_path / "out")]):
        proc = rvharness(*cmd, timeout=60)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert str(a) in proc.stderr and str(b) in proc.stderr and "'same'" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "default").exists()


def test_recipe_names_must_be_plain_file_names(tmp_path: Path) -> None:
    r = tmp_path / "r.yaml"
    r.write_text(f"name: ../../escape\nsource: {{tree: {tmp_path}}}\n")
    with pytest.raises(InputError, match="not a plain file name") as err:
        load_recipe(r)
    assert err.value.line == 1


REPEAT_BOMB = """\
name: bomb
steps:
  - repeat:
      times: 100
      steps:
        - repeat:
            times: 100
            steps:
              - repeat:
                  times: 100
                  steps:
                    - shell: 'true'
"""


def test_repeat_bomb_is_refused_in_milliseconds(tmp_path: Path) -> None:
    p = _scenario(tmp_path, REPEAT_BOMB)
    t0 = time.monotonic()
    err = _load_error(p)
    took = time.monotonic() - t0
    assert err.line == 3 and "1,000,000 steps" in str(err) and f"at most {scenario_limits.MAX_STEPS:,}" in str(err)
    assert took < 0.5, f"check took {took:.2f} s: it expanded the repeats"
    proc = rvharness("check", str(p), timeout=60)
    assert proc.returncode == 2 and f"{p}:3:" in proc.stderr, proc.stderr


def test_repeat_bomb_through_yaml_anchors(tmp_path: Path) -> None:
    # Each level's body is an anchor the next level repeats: a few lines
    # of YAML asking for 1000^3 steps. Counted once per shared list.
    p = _scenario(tmp_path, """\
name: anchors
steps:
  - repeat: {times: 1, steps: &b0 [{shell: 'true'}]}
  - repeat: {times: 1, steps: &b1 [{repeat: {times: 1000, steps: *b0}}]}
  - repeat: {times: 1, steps: &b2 [{repeat: {times: 1000, steps: *b1}}]}
  - repeat: {times: 1000, steps: *b2}
""")
    t0 = time.monotonic()
    proc = rvharness("check", str(p), timeout=30)
    assert proc.returncode == 2 and f"{p}:6:" in proc.stderr, proc.stderr
    assert "1,001,001,001 steps" in proc.stderr
    assert time.monotonic() - t0 < 10


def test_steps_at_the_bound_are_accepted_and_nesting_is_bounded(tmp_path: Path) -> None:
    ok = REPEAT_BOMB.replace("times: 100\n            steps", "times: 2\n            steps") \
        .replace("times: 100\n                  steps", "times: 10\n                  steps")
    assert len(scenario.load(_scenario(tmp_path, ok)).steps) == 2000
    deep = "steps:\n" + "".join("  " * (2 * i + 1) + "- repeat:\n" + "  " * (2 * i + 3) + "times: 1\n"
                                + "  " * (2 * i + 3) + "steps:\n" for i in range(9)) \
        + "  " * 20 + "- shell: 'true'\n"
    assert "nested more than 8 deep" in str(_load_error(_scenario(tmp_path, deep, "deep.yaml")))


def test_deeply_nested_yaml_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    p = _scenario(tmp_path, "steps: " + "[" * 5000 + "]" * 5000 + "\n")
    proc = rvharness("check", str(p), timeout=60)
    assert proc.returncode == 2 and "nested too deeply" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("step,fragment", [
    ("shell: " + json.dumps("echo " + "x" * 8200), "at most 8,192 are sent"),
    ('shell: "echo a\\0b"', "NUL"),
    ('shell: "   "', "non-empty"),
    ("kdb: {cpu: 0, commands: [" + json.dumps("md " + "1" * 200) + "]}", "kdb reads at most 198"),
    ('kdb: {cpu: 0, commands: ["bt\\tx"]}', "printable ASCII"),
    ('reset: {during: "sleep 1\\u0000"}', "NUL"),
])
def test_command_limits_checked_at_load(tmp_path: Path, step: str, fragment: str) -> None:
    p = _scenario(tmp_path, f"steps:\n  - {step}\n")
    err = _load_error(p)
    assert err.line == 2 and fragment in str(err), str(err)


def test_multi_line_and_4k_commands_are_accepted(tmp_path: Path) -> None:
    p = _scenario(tmp_path, "steps:\n  - shell: |\n      cat <<'EOF'\n      # not a comment\n      EOF\n"
                            f"  - shell: {json.dumps('echo ' + 'y' * 4096)}\n")
    assert [s.args["command"][:9] for s in scenario.load(p).steps] == ["cat <<'EO", "echo yyyy"]


# ------------------------------------------------------------------ helpers die with the harness

def _alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting for its new parent to
    reap it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


# The starve fallback (no writable cpu cgroup) keeps a host core busy with a
# hog process while the starved vCPU threads sit at SCHED_IDLE on it.
HOG_SCRIPT = """
import sys, time
from harness.guest import faults
target = int(sys.argv[1])
with faults._idle_priority(target, [target], []):
    print("hog running", flush=True)
    time.sleep(600)
"""


def test_sigkill_harness_kills_starve_hog(tmp_path: Path) -> None:
    target = subprocess.Popen(["sleep", "600"])     # stands in for a vCPU thread
    proc = subprocess.Popen([sys.executable, "-c", HOG_SCRIPT, str(target.pid)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    hogs: list[int] = []
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "hog running\n"
        hogs = _children_of(proc.pid)
        assert len(hogs) == 1 and "while True" in Path(f"/proc/{hogs[0]}/cmdline").read_text()
        proc.kill()
        proc.wait(10)
        assert _wait_gone(hogs, 3.0) == [], "the CPU hog outlived the SIGKILLed harness"
    finally:
        for pid in [proc.pid, target.pid] + [h for h in hogs if _alive(h)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)
        target.wait(10)


def test_preexec_refuses_to_run_when_parent_already_gone() -> None:
    # The race the helper closes: the parent dies between fork and prctl.
    # The preexec function carries the pid it was made in; run in a child
    # whose parent is another process, it must exit instead of running.
    from harness.core.children import die_with_harness
    hook = die_with_harness()
    pid = os.fork()
    if pid == 0:                # child: its parent is this test, as expected
        try:
            hook()
            grandchild = os.fork()
            if grandchild == 0:     # parent is the child, not the hook's pid
                hook()
                os._exit(0)         # not reached
            _, status = os.waitpid(grandchild, 0)
            os._exit(0 if os.waitstatus_to_exitcode(status) == 1 else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# ------------------------------------------------------------------ a harness bug exits 2

BUG_SCRIPT = """
import sys
from harness import cli
from harness.scenario import preflight
def load_scenarios(paths):
    raise KeyError("a bug the harness did not expect")
preflight.load_scenarios = load_scenarios
sys.exit(cli.main(sys.argv[1:]))
"""


def test_unexpected_exception_exits_2_with_traceback_in_artifacts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", BUG_SCRIPT, "run", "scenarios/backtrace-ipi.yaml",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" in lines[0] and "KeyError" in lines[0] and str(out / "harness-error.txt") in lines[0]
    text = (out / "harness-error.txt").read_text()
    assert "Traceback (most recent call last)" in text and "a bug the harness did not expect" in text
    # A command without an artifact directory keeps it under the cache's logs/.
    env = {**os.environ, "RVHARNESS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", BUG_SCRIPT, "check", "scenarios/"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    logs = list((tmp_path / "cache" / "logs").glob("harness-error-*.txt"))
    assert len(logs) == 1 and str(logs[0]) in proc.stderr


# Every allowed option with a value that keeps the guest as it is: the run
# below also shows QEMU accepts the documented allow-list.
ALLOWED_AND_HARMLESS = ["-cpu", "rv64", "-machine", "aclint=off", "-accel", "tcg,thread=multi",
                        "-rtc", "base=utc,clock=host"]


@pytest.mark.integration
def test_sigkill_harness_kills_qemu(default_kernel, tmp_path: Path) -> None:
    scn = _scenario(tmp_path, "name: killed\nmachine:\n  cpus: 2\n  qemu_args: "
                    + json.dumps(ALLOWED_AND_HARMLESS)
                    + "\nsteps:\n  - shell: 'sleep 1000'\n    timeout: 600\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([*RVHARNESS, "run", str(scn), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    art = out / "default" / "killed"
    qemu: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = art / "console.log"
            if log.exists() and "@RVHS" in log.read_text(errors="replace"):
                break               # the guest is running the sleep
            assert proc.poll() is None, "the harness ended before the guest ran the command"
            time.sleep(0.2)
        argv = (art / "qemu.argv").read_text().splitlines()
        assert argv[argv.index("-cpu") + 1] == "rv64"       # the allowed options reached QEMU
        sock = next(a for a in argv if a.startswith("unix:")).split(",")[0][5:]
        qemu = qemu_pids_mentioning(sock)
        assert len(qemu) == 1, "QEMU is not running"
        proc.kill()             # SIGKILL: no handler, no context manager runs
        proc.wait(10)
        assert _wait_gone(qemu, 5.0) == [], "QEMU outlived the SIGKILLed harness"
        assert qemu_pids_mentioning(sock) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in qemu:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if qemu:                # the private run directory a SIGKILL leaves behind
            shutil.rmtree(Path(sock).parent, ignore_errors=True)
    assert "rvharness-ready" in (art / "console.log").read_text()    # the log is kept


# A process forked from the harness after QEMU started (a worker pool that
# forks, a daemonising helper) holds the console's pty open: QEMU then gets
# no hangup (SIGHUP) when the harness dies, and only the death signal ends it.
FORKED_HOLDER = """
import os, sys, time
from pathlib import Path
from harness.kernel import initramfs, kbuild
from harness.core.arch import RISCV64
from harness.guest.machine import Machine, MachineSpec
from harness.kernel.recipe import load_recipe
k = kbuild.build(load_recipe(Path("kernels/default.yaml")))
m = Machine(MachineSpec(RISCV64, k.image, initramfs.build(RISCV64), cpus=1), Path(sys.argv[1])).start()
m.boot()
if os.fork() == 0:          # keeps every fd, the pty master included
    time.sleep(600)
    os._exit(0)
print(m.child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.integration
def test_qemu_dies_with_harness_even_when_its_console_stays_open(default_kernel, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", FORKED_HOLDER, str(tmp_path / "art")], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    qemu: list[int] = []
    holders: list[int] = []
    try:
        assert proc.stdout is not None
        qemu = [int(proc.stdout.readline())]
        holders = [p for p in _children_of(proc.pid) if p not in qemu]
        assert _alive(qemu[0]) and len(holders) == 1
        proc.kill()
        proc.wait(10)
        assert _wait_gone(qemu, 5.0) == [], "QEMU outlived the SIGKILLed harness"
    finally:
        for pid in [proc.pid] + holders + qemu:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
