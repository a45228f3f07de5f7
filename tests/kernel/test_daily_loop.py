"""Issue 13 end to end on real QEMU and real kernels: one run of three
scenarios (one with a deliberately wrong expectation, so there is a real
failure to report) is checked by many tests: --follow, -v, JUnit (size,
junitparser, the xunit plugin's XSD), report.html (content, and headless
Chromium: no console errors, key elements, a screenshot), `show`; then
--tree on a working copy of Debian's source with an uncommitted change,
its build failure line, and --kernel-image from that build directory."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import xmlschema
from helpers import ROOT, qemu_children, rvharness
from junitparser import Error, Failure, JUnitXml
from working_copy import MARKER, NEW_FILE, SOURCE, replace_file, working_copy

from harness.core.paths import cache_dir
from harness.outputs import junit, results

pytestmark = pytest.mark.integration

XSD = ROOT / "tests/data/junit-10.xsd"
JUNIT_LIMIT = 200_000
WRONG = "backtrace-ipi-wrong-expectation"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Done:
    proc: subprocess.CompletedProcess
    out: Path
    seconds: float


def _wrong_scenario(where: Path) -> Path:
    """backtrace-ipi with one expectation the kernel cannot meet (the
    backtrace IPI counted twice on CPU 2): a genuine failed check."""
    text = (ROOT / "scenarios/backtrace-ipi.yaml").read_text()
    text = text.replace("name: backtrace-ipi\n", f"name: {WRONG}\n", 1)
    text = text.replace("delta: {1: 0, others: 1}", "delta: {1: 0, 2: 2, others: 1}", 1)
    assert WRONG in text and "2: 2" in text
    path = where / f"{WRONG}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def loop_run(tmp_path_factory: pytest.TempPathFactory, default_kernel, initrd) -> Done:
    base = tmp_path_factory.mktemp("loop")
    out = base / "out"
    t0 = time.monotonic()
    proc = rvharness("run", "scenarios/backtrace-ipi.yaml", "scenarios/hotplug-online-latency.yaml",
                     str(_wrong_scenario(base)), "--out", str(out), "--follow", "-v", timeout=600)
    return Done(proc, out, time.monotonic() - t0)


# ------------------------------------------------------------------ the run

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped, (\d+) errors; "
                     r"(\d+)/(\d+) expectations, (\d+)/(\d+) model claims$", re.MULTILINE)


def _verdicts(out: Path) -> dict[str, list[dict]]:
    """Each run's checks as its verdicts.json recorded them (not the summary)."""
    import json
    return {d.name: json.loads((d / "verdicts.json").read_text())["checks"]
            for d in sorted((out / "default").iterdir())}


# The hotplug scenario's verdict is the kernel's and the host's: under heavy
# load an online write can exceed its 1000 ms bound (measured 1130 ms at
# load 8 on 2 cores). So these tests compare every report with the run's
# own verdicts.json instead of assuming which runs passed; the planted
# failure is the one they require.

def test_run_reports_the_failure_with_both_origins_counted(loop_run: Done) -> None:
    p = loop_run.proc
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    fail = next(l for l in lines if l.startswith("FAIL ") and WRONG in l)
    assert re.search(r"\d+/\d+ expectations, \d+/\d+ model claims", fail)
    assert "backtrace IPI counted once on every other CPU" in p.stdout
    checks = [c for cs in _verdicts(loop_run.out).values() for c in cs]
    own = [c for c in checks if not c["name"].startswith("model: ")]
    model = [c for c in checks if c["name"].startswith("model: ")]
    m = SUMMARY.search(p.stdout)
    assert m, p.stdout
    assert int(m.group(1)) + int(m.group(2)) == 3 and int(m.group(2)) >= 1
    assert (int(m.group(5)), int(m.group(6))) == (sum(c["verdict"] == "pass" for c in own), len(own))
    assert (int(m.group(7)), int(m.group(8))) == (sum(c["verdict"] == "pass" for c in model), len(model))
    assert len(model) > 50 and len(own) >= 7
    assert f"report: {loop_run.out / 'report.html'}" in p.stdout
    assert not qemu_children()


def test_follow_streams_each_vm_with_its_prefix(loop_run: Done) -> None:
    out = loop_run.proc.stdout
    for name in ("backtrace-ipi", "hotplug-online-latency", WRONG):
        prefix = f"[default/{name}] "
        streamed = [l[len(prefix):] for l in out.split("\n") if l.startswith(prefix)]
        assert any("rvharness-ready" in l for l in streamed), name
        # Every line of the console log, in order, once (the serial console's
        # \r\r\n line ends make no extra blank lines).
        run = next(r for r in results.load(loop_run.out) if r.scenario == name)
        assert [l for l in streamed if l] == [l for l in run.console.split("\n") if l], name
    assert any(l.startswith("[default/backtrace-ipi] ") and "NMI backtrace for cpu" in l
               for l in out.splitlines())
    # Streamed before the scenario's result line, not replayed after.
    assert out.index("[default/backtrace-ipi] ") < out.index("PASS  backtrace-ipi [default]")


def test_verbose_names_every_step_and_plain_progress_stays_quiet(loop_run: Done) -> None:
    err = loop_run.proc.stderr
    assert "rvharness: run backtrace-ipi on default" in err
    assert "rvharness:   step 'trigger' (sysrq)" in err
    online = re.findall(r"^rvharness:   step 'online#\d+' \(hotplug\)$", err, re.MULTILINE)
    assert len(online) == 10                        # the hotplug scenario's ten online writes
    # Not a TTY: a plain line every 15 s while a scenario runs (the hotplug
    # one takes 18 s or more), naming the run, the step and the time.
    assert re.search(r"^rvharness: \[\d/3\] hotplug-online-latency \[default\] step '\S+' \d+s \(\d+s\)$",
                     err, re.MULTILINE), err
    # Not a TTY: no rich control sequences in the captured stderr.
    assert "\x1b[" not in err


# ------------------------------------------------------------------ JUnit

def test_junit_is_small_valid_and_keeps_origins_apart(loop_run: Done) -> None:
    path = loop_run.out / "junit.xml"
    text = path.read_text()
    assert len(text.encode()) < JUNIT_LIMIT
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    xml = JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    assert set(suites) == {"default/backtrace-ipi", "default/hotplug-online-latency", f"default/{WRONG}"}
    for suite in suites.values():
        classes = {c.classname.rsplit(".", 1)[1] for c in suite}
        assert classes == {"expectations", "model"}, suite.name
    # The console once per scenario: attached in the suite's system-out (the
    # failed run's tail quoted there too), never in a testcase.
    failed_runs = sum(1 for cs in _verdicts(loop_run.out).values() if any(c["verdict"] != "pass" for c in cs))
    assert text.count("<system-out>") == 3
    assert text.count("[[ATTACHMENT|") >= 3 + failed_runs     # plus one per failure text
    assert all(c.system_out is None for s in xml for c in s)
    # The model's claims: one testcase per run, its count in the suite's properties.
    for suite in suites.values():
        assert [c.name for c in suite if c.classname.endswith(".model")] == ["model: every claim holds"]
        checks = next(p.value for p in suite.properties() if p.name == "checks")
        m = re.fullmatch(r"(\d+)/(\d+) expectations, (\d+)/(\d+) model claims", checks)
        assert m and int(m.group(4)) > 0, checks
    failed = {(s.name, c.name): c for s in xml for c in s if any(isinstance(r, (Failure, Error)) for r in c.result)}
    want = set()
    for name, checks in _verdicts(loop_run.out).items():
        for c in checks:
            if c["verdict"] in ("fail", "error"):
                want.add((f"default/{name}", "model: every claim holds" if c["name"].startswith("model: ")
                          else c["name"]))
    assert set(failed) == want
    planted = (f"default/{WRONG}", "backtrace IPI counted once on every other CPU")
    assert planted in failed
    body = failed[planted].result[0].text
    log = loop_run.out / "default" / WRONG / "console.log"
    assert f"[[ATTACHMENT|{log.resolve()}]]" in body
    assert "expected: 'CPU backtrace interrupts' before->after" in body
    assert re.search(r"console\.log lines \d+-\d+:", body)
    # The marked lines are the failing step's: /proc/interrupts read after the trigger.
    marked = [l for l in body.splitlines() if re.match(r"^\s*\d+> ", l)]
    assert marked and any("CPU backtrace interrupts" in l for l in marked)


def test_junit_of_a_matrix_sized_suite_stays_under_200_kb(loop_run: Done) -> None:
    """Five kernels x sixteen scenarios (the seed suite's matrix), a third of
    them failing, made of this run's real results: the console budget is
    shared, so the file stays small however many runs there are."""
    runs = results.load(loop_run.out)
    many = [results.SavedRun(f"{r.scenario}-{i}", f"kernel{i % 5}", r.verdict, r.reason, r.seconds, r.artifacts,
                        r.checks, r.file, r.covers) for i in range(27) for r in runs][:80]
    assert sum(r.verdict == "fail" for r in many) >= 26
    text = junit.render(many)
    assert len(text.encode()) < JUNIT_LIMIT, len(text.encode())
    assert text.count("<system-out>") == 80


# ------------------------------------------------------------------ report.html

def test_report_holds_tables_pictures_and_linked_failing_lines(loop_run: Done) -> None:
    html = (loop_run.out / "report.html").read_text()
    assert 'id="runs"' in html
    assert html.count("<svg") >= 1 + 3 + 2   # latency, timelines, heat maps (two backtrace-ipi runs)
    assert "CPU online latency per kernel" in html and "bound 1000 ms" in html
    assert "IPI counter deltas before → after" in html
    assert "The reference model" in html and "The scenario" in html
    # The failing check links to its console line, and the line back to the check.
    m = re.search(r'<a class="to-log" href="#(r\d+-L(\d+))">', html)
    assert m, "no failing check links into its console log"
    line = re.search(rf'<span class="l hl" id="{m.group(1)}" data-n="{m.group(2)}"><a href="#(r\d+-c\d+)"', html)
    assert line, "the linked console line is not highlighted"
    assert f'id="{line.group(1)}"' in html
    # Backtraces per CPU side by side: one column per CPU of the sysrq-l round.
    assert html.count('<div class="cpu"><h4>CPU ') >= 8


def _chromium(*args: str, profile: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "chromium missing: scripts/install-host-packages installs it"
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                           "--v=0", *args], capture_output=True, text=True, timeout=timeout)


def _console_errors(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l
            or "Not allowed to load" in l or "ERR_FILE_NOT_FOUND" in l]


def test_report_in_headless_chromium(loop_run: Done, tmp_path: Path) -> None:
    page = (loop_run.out / "report.html").resolve().as_uri()
    dom = _chromium("--dump-dom", page, profile=tmp_path / "profile1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_errors(dom.stderr) == []
    for element in ('id="runs"', 'id="summary"', 'class="latency"', 'class="heatmap"',
                    'class="timeline"', 'class="l hl"', 'class="bts"'):
        assert element in dom.stdout, element
    shot = loop_run.out / "report.png"
    pic = _chromium(f"--screenshot={shot}", "--window-size=1400,2600", "--hide-scrollbars", page,
                    profile=tmp_path / "profile2")
    assert pic.returncode == 0 and shot.exists(), pic.stderr[-2000:]
    assert shot.stat().st_size > 50_000, "an empty page makes a tiny PNG"
    # pytest keeps only its last three base directories, shared by every
    # session of the user: a copy at a fixed place in the cache outlives them.
    kept = cache_dir() / "test-artifacts" / "daily-loop-report.png"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shot, kept)
    print(f"screenshot: {shot} (kept as {kept})")


def test_chromium_check_sees_a_console_error(tmp_path: Path) -> None:
    """The check above can fail: a page whose script throws is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><title>x</title><p id=runs>x</p><script>throw new Error('boom')</script>")
    dom = _chromium("--dump-dom", bad.as_uri(), profile=tmp_path / "profile")
    assert any("boom" in l for l in _console_errors(dom.stderr)), dom.stderr[-2000:]


# ------------------------------------------------------------------ show

def test_show_prints_the_same_summary_again(loop_run: Done) -> None:
    again = rvharness("show", str(loop_run.out))
    assert again.returncode == 1
    summary = SUMMARY.search(loop_run.proc.stdout)
    assert summary and summary.group(0) in again.stdout.splitlines()
    assert f"FAIL  {WRONG} [default]" in again.stdout
    html = rvharness("show", str(loop_run.out), "--html")
    assert f"report: {(loop_run.out / 'report.html').resolve()}" in html.stdout


# ------------------------------------------------------------------ --tree

def _listing(tree: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, _dirs, files in os.walk(tree):
        for f in files:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            out[os.path.relpath(p, tree)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


@dataclass
class TreeBuild:
    tree: Path
    image: Path
    before: dict
    after: dict
    proc: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def tree_build() -> TreeBuild:
    tree = working_copy()
    before = _listing(tree)
    proc = rvharness("build", "kernels/default.yaml", "--tree", str(tree), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return TreeBuild(tree, Path(proc.stdout.strip()), before, _listing(tree), proc)


def test_tree_build_never_writes_into_the_working_copy(tree_build: TreeBuild) -> None:
    assert tree_build.after == tree_build.before
    assert not (tree_build.tree / ".config").exists()


def test_tree_run_boots_the_uncommitted_change(tree_build: TreeBuild, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = rvharness("run", "--tree", str(tree_build.tree), "scenarios/backtrace-ipi.yaml", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kernel = f"tree-{tree_build.tree.name}"
    log = (out / kernel / "backtrace-ipi" / "console.log").read_text()
    assert MARKER in log                   # the untracked file, built through the edited Makefile
    # The same content is a cache hit: nothing is built again.
    again = rvharness("build", "kernels/default.yaml", "--tree", str(tree_build.tree))
    assert again.stdout.strip() == str(tree_build.image)
    assert "building kernel" not in again.stderr


def test_tree_build_failure_names_the_compiler_line(tree_build: TreeBuild) -> None:
    source = tree_build.tree / NEW_FILE
    try:
        replace_file(source, SOURCE.replace("return 0;", "return 0 +;"))
        proc = rvharness("build", "kernels/default.yaml", "--tree", str(tree_build.tree), "-q",
                         timeout=1800)
        assert proc.returncode == 2
        line = next(l for l in proc.stderr.splitlines() if "failed after" in l)
        assert re.search(r"build of tree-\S+ failed after \d+ files: .*rvh_tree_test\.c:\d+:\d+: error: ", line), line
    finally:
        replace_file(source, SOURCE)
    back = rvharness("build", "kernels/default.yaml", "--tree", str(tree_build.tree))
    assert back.stdout.strip() == str(tree_build.image) and "building kernel" not in back.stderr


def _build_dir_of(tree_build: TreeBuild) -> Path:
    """The slot's build directory: the one whose System.map has the test's function."""
    for d in sorted((cache_dir() / "work").glob("*/build")):
        sm = d / "System.map"
        if sm.exists() and "rvh_tree_test_init" in sm.read_text(errors="replace"):
            return d
    raise AssertionError("no build directory holds the working copy's build")


def test_kernel_image_from_a_build_directory_symbolises_probes(tree_build: TreeBuild, tmp_path: Path) -> None:
    build = _build_dir_of(tree_build)
    scn = tmp_path / "probe.yaml"
    scn.write_text("name: probe-where\nmachine: {cpus: 2}\nrequires: [CONFIG_SMP]\n"
                   "steps:\n  - vcpus: now\nexpect:\n  - console: {absent: 'Oops'}\n")
    out = tmp_path / "out"
    proc = rvharness("run", str(scn), "--kernel-image", str(build / "arch/riscv/boot/Image"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = next(l for l in proc.stderr.splitlines() if "System.map" in l)
    for name in ("System.map", "vmlinux", ".config"):
        assert f"{name} {build / name}" in found
    assert "not found" not in found
    import json
    obs = json.loads((out / "Image" / "probe-where" / "observations.json").read_text())
    samples = [s for rnd in obs["vcpu_probes"]["now"]["samples"] for s in rnd]
    assert samples and all(s["location"] != "unknown" for s in samples)
    assert all(s["pc_symbol"] and "+0x" in s["pc_symbol"] for s in samples if s["location"] != "firmware")


def test_live_progress_on_a_terminal(default_kernel, initrd, tmp_path: Path) -> None:
    """On a TTY the run shows the scenario, its step and elapsed time live."""
    import sys

    import pexpect

    child = pexpect.spawn(sys.executable, ["-m", "harness.cli", "run", "scenarios/backtrace-ipi.yaml",
                                           "--out", str(tmp_path / "out")],
                          cwd=str(ROOT), encoding="utf-8", timeout=180, dimensions=(40, 200))
    try:
        child.expect(r"backtrace-ipi \[default\] (booting|step '\w+' \d+s) \(\d+s\)")
        child.expect(r"1 passed, 0 failed")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
