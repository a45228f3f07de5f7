"""rvharness bisect on a real kernel history (scripts/kernel-history: the
Debian 6.12 source with a chain of commits on top), real builds and real
QEMU boots. One bisect run serves several assertions: the main one finds
and verifies the f15c21a3de1b revert, has a QEMU killed under it (infra,
retried, not bad), is SIGKILLed half-way and finished with --resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, RVHARNESS, _processes, rvharness
from junitparser import JUnitXml

pytestmark = pytest.mark.integration
BACKTRACE = "scenarios/backtrace-ipi.yaml"
# Builds wait for the host-wide build lock: on a shared host that can take long.
LONG = 3600
LATENCY = "scenarios/hotplug-online-latency.yaml"


@pytest.fixture(scope="session")
def history() -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "kernel-history")], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _steps(out: Path) -> list[dict]:
    path = out / "steps.jsonl"
    if not path.exists():
        return []
    recs = []
    for line in path.read_text().splitlines():
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
    return recs


def _qemu_of(pid: int) -> list[int]:
    """Live QEMU processes started by process pid (its argv names no artifact
    directory, so find it by its parent)."""
    found = []
    for child, cmd, stat in _processes():
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == pid and state != "Z" and "qemu-system" in cmd:
            found.append(child)
    return found


def _wait(pred, timeout: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


@pytest.fixture(scope="session")
def main_bisect(history: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """base..code4 with backtrace-ipi. After the endpoints, one QEMU is
    killed from outside; after the step that follows, the whole bisect is
    SIGKILLed; then `--resume` finishes it."""
    c = history["commits"]
    out = tmp_path_factory.mktemp("bisect-main")
    repo = history["repo"]
    status_before = subprocess.run(["git", "-C", repo, "status", "--porcelain"], capture_output=True,
                                   text=True).stdout
    head_before = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                                 text=True).stdout
    argv = [*RVHARNESS, "bisect", "--tree", repo, "--good", history["base"], "--bad", c["code4"],
            BACKTRACE, "--out", str(out)]
    first_log = out.parent / "first.log"
    with open(first_log, "w") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    killed_qemu: list[int] = []
    orphans: list[int] = []
    try:
        def endpoints_done() -> bool:
            return sum(r.get("type") == "step" for r in _steps(out)) >= 2
        assert _wait(endpoints_done, 3600, proc), first_log.read_text()[-3000:]
        n_before = len(_steps(out))

        def qemu_up() -> bool:
            return bool(_qemu_of(proc.pid))
        assert _wait(qemu_up, 3600, proc), first_log.read_text()[-3000:]
        # Early in the boot (about 1 s under TCG): at 1.5 s the short scenario
        # had sometimes ended already (CI rehearsal 2026-12-07: no rerun, the
        # kill missed), and a kill after the verdict tests nothing.
        time.sleep(0.3)
        for pid in _qemu_of(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
                killed_qemu.append(pid)
            except ProcessLookupError:
                pass

        def next_step_done() -> bool:
            return any(r.get("type") == "step" for r in _steps(out)[n_before:])
        assert _wait(next_step_done, 3600, proc), first_log.read_text()[-3000:]
        # Kill it mid-bisect, as a host crash would (QEMU, in its own
        # session, is ended below if the hang-up of its console did not).
        orphans.extend(_qemu_of(proc.pid))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        orphans.extend(_qemu_of(proc.pid))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    before_resume = _steps(out)
    resumed = rvharness("bisect", "--resume", str(out), timeout=5400)
    return {"out": out, "first_rc": proc.returncode, "first_log": first_log.read_text(),
            "killed_qemu": killed_qemu, "before": before_resume, "after": _steps(out),
            "resumed": resumed, "status_before": status_before, "head_before": head_before,
            "result": json.loads((out / "bisect.json").read_text()) if (out / "bisect.json").exists() else {}}


def test_bad_input_gets_one_line_and_exit_2(history: dict, tmp_path: Path) -> None:
    c = history["commits"]
    repo = history["repo"]

    def err(*args: str) -> str:
        r = rvharness("bisect", *args, "--out", str(tmp_path / "o"), timeout=300)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        return lines[0]

    plain = tmp_path / "plain"
    plain.mkdir()
    assert "not a git tree" in err("--tree", str(plain), "--good", "a", "--bad", "b", BACKTRACE)
    assert "'nosuchrev' is not a commit" in err("--tree", repo, "--good", "nosuchrev", "--bad", c["code4"],
                                                BACKTRACE)
    assert "is not an ancestor of --bad" in err("--tree", repo, "--good", c["code4"], "--bad", c["code2"],
                                                BACKTRACE)
    recipe = tmp_path / "other.yaml"
    recipe.write_text("source:\n  debian: linux-source-6.12\nbase: tinyconfig\n")
    line = err("--tree", repo, "--good", history["base"], "--bad", c["code4"], "--kernel", str(recipe), BACKTRACE)
    assert str(recipe) in line and "key 'source'" in line and "conflicts with --tree" in line
    assert "--resume" in err("--resume", str(tmp_path / "nothing-here"))


def test_a_good_endpoint_that_fails_is_a_clear_error(history: dict, tmp_path: Path) -> None:
    c = history["commits"]
    r = rvharness("bisect", "--tree", history["repo"], "--good", c["doc4"], "--bad", c["code4"],
                  BACKTRACE, "--out", str(tmp_path), timeout=LONG)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("rvharness: error: the good endpoint --good ")
    assert "fails:" in lines[-1] and "backtrace" in lines[-1]
    # One run was enough to say so, and its console log is kept.
    assert len(list(tmp_path.glob("runs/*/*/run-1/console.log"))) == 1


def test_a_scenario_that_does_not_fail_on_bad_is_a_clear_error(history: dict, tmp_path: Path) -> None:
    c = history["commits"]
    r = rvharness("bisect", "--tree", history["repo"], "--good", history["base"], "--bad", c["code1"],
                  BACKTRACE, "--max-repeats", "3", "--out", str(tmp_path), timeout=LONG)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"rvharness: error: the scenario does not fail on --bad {c['code1'][:12]}: 3 runs passed")


def test_the_regression_is_found_and_verified(main_bisect: dict, history: dict) -> None:
    r = main_bisect["resumed"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = main_bisect["result"]
    culprit = history["commits"]["revert-f15c"]
    assert res["status"] == "found"
    assert res["culprit"]["id"] == culprit
    ver = res["verification"]
    assert ver["checks"] == {"culprit": True, "parent": True, "revert": True}
    # (The posterior may have asked the culprit for runs beyond the N of the verification.)
    assert ver["culprit"]["signature"] >= ver["n"] and ver["culprit"]["clean"] == 0
    assert ver["parent"]["clean"] >= ver["n"]
    assert res["p_culprit"] >= 0.95 and res["odds"]["culprit"] == culprit
    assert ver["revert"]["clean"] >= ver["n"] and ver["revert"]["signature"] == 0
    assert res["confidence"] >= 0.95
    assert not res["flags"]
    # The signature is the backtrace scenario's own checks (and the model's claims).
    assert any("CPU backtrace" in c or "backtrace IPI" in c for c in res["signature"]["checks"])
    # The user's checkout was never modified.
    repo = history["repo"]
    assert subprocess.run(["git", "-C", repo, "status", "--porcelain"], capture_output=True,
                          text=True).stdout == main_bisect["status_before"]
    assert subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout == main_bisect["head_before"]


def test_every_step_has_a_verdict_with_counts_and_the_reports_say_so(main_bisect: dict, history: dict) -> None:
    out: Path = main_bisect["out"]
    res = main_bisect["result"]
    c = history["commits"]
    by_commit = {t["commit"]: t for t in res["tested"] if t["role"] == "bisect"}
    culprit_idx = history["order"].index("revert-f15c")
    for sha, t in by_commit.items():
        name = next(n for n, s in c.items() if s == sha)
        if name == "break":
            assert t["verdict"] == "skip" and t["reason"].startswith("build failed")
        elif history["order"].index(name) >= culprit_idx:
            assert t["verdict"] == "bad", t
        else:
            assert t["verdict"] == "good", t
        assert t["image"] or t["build"] != "built"
    # At least one documentation-only commit reused a verdict without booting.
    reused = [t for t in res["tested"] if t["same_image_as"] and t["boots"] == 0]
    assert reused, [(t["short"], t["reason"]) for t in res["tested"]]
    md = (out / "bisect.md").read_text()
    culprit = res["culprit"]
    for text in (culprit["id"], culprit["subject"], "Verification", "Reproduce:", "rvharness bisect --tree",
                 "Signature", "arch/riscv/kernel/smp.c", "| # | commit |"):
        assert text in md, text
    assert all(t["short"][:12] in md for t in res["tested"])
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    assert len(cases) == len(res["tested"]) + 1          # one per step, and P(culprit)
    assert f"P(culprit) = {res['p_culprit']:.3f}" in md and res["p_culprit"] >= 0.95
    stdout = main_bisect["first_log"] + main_bisect["resumed"].stdout
    assert "candidates left) — building…" in stdout and "step 3 of ~" in stdout


def test_a_killed_qemu_is_infra_retried_and_not_counted_as_bad(main_bisect: dict, history: dict) -> None:
    """QEMU SIGKILLed from outside is infrastructure, retried where it
    happened: the runner boots the scenario again (runner.RUN_ATTEMPTS, the
    first console log kept as console-rerun1.log). The step counts it as
    infra, and its verdict comes from the runs that said something."""
    assert main_bisect["killed_qemu"]
    runs = [r for r in main_bisect["after"] if r.get("type") == "run"]
    rerun = [r for r in runs if any((Path(a) / "console-rerun1.log").exists() for a in r["run"]["artifacts"])]
    assert len(rerun) == 1, [(r["commit"], r["run"]["reasons"]) for r in runs]
    assert not any(r["run"]["infra"] for r in runs), [r["run"]["infra"] for r in runs]
    hit = rerun[0]["commit"]
    obs = json.loads((Path(rerun[0]["run"]["artifacts"][0]) / "observations.json").read_text())
    assert "QEMU died of signal 9 (SIGKILL)" in obs["boot_retries"][-1]["reason"]
    step = next(t for t in main_bisect["result"]["tested"] if t["short"] == hit)
    # Its verdict is the commit's real one, the rerun counted like any run.
    name = next(n for n, s in history["commits"].items() if s.startswith(hit))
    want = "bad" if history["order"].index(name) >= history["order"].index("revert-f15c") else "good"
    assert step["verdict"] == want
    assert step["infra"] == 1 and step["clean"] + step["signature"] >= 1


def test_resume_after_sigkill_redoes_no_finished_step(main_bisect: dict) -> None:
    assert main_bisect["first_rc"] == -signal.SIGKILL
    before = [r for r in main_bisect["before"] if r.get("type") == "step"]
    after = [r for r in main_bisect["after"] if r.get("type") == "step"]
    assert len(before) >= 3
    # (A run the posterior asks for is a step of its own, and may repeat a commit.)
    keys = [(r["commit"], r["role"]) for r in after if r["role"] != "posterior"]
    assert len(keys) == len(set(keys)), "a step was done twice"
    assert after[:len(before)] == before
    # No run of a finished step's Image was added by the resumed process,
    # except verification top-ups (roles culprit/parent/revert).
    finished_images = {r["image"] for r in before if r["image"]}
    n_runs_before = sum(r.get("type") == "run" for r in main_bisect["before"])
    new_runs = [r for r in main_bisect["after"] if r.get("type") == "run"][n_runs_before:]
    verify_images = {r["image"] for r in after if r["role"] in ("culprit", "parent", "revert")}
    assert not [r for r in new_runs if r["image"] in finished_images - verify_images]
    out = main_bisect["resumed"].stdout
    assert out.count("[from the step log]") == len(before)


def test_a_build_break_next_to_the_culprit_leaves_both_candidates(history: dict, tmp_path: Path) -> None:
    c = history["commits"]
    r = rvharness("bisect", "--tree", history["repo"], "--good", c["doc3"], "--bad", c["amb-fixbuild"],
                  BACKTRACE, "--out", str(tmp_path), timeout=LONG)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "bisect.json").read_text())
    assert res["status"] == "inconclusive"
    assert [x["id"] for x in res["candidates"]] == [c["amb-revert-broken"], c["amb-fixbuild"]]
    broken = next(t for t in res["tested"] if t["commit"] == c["amb-revert-broken"])
    assert broken["verdict"] == "skip" and "build failed" in broken["reason"]
    assert "rvh_no_such_function" in broken["reason"]
    md = (tmp_path / "bisect.md").read_text()
    assert c["amb-revert-broken"][:12] in md and c["amb-fixbuild"][:12] in md and "one of" in md


def test_reverse_finds_the_commit_that_fixes_the_regression(history: dict, tmp_path: Path) -> None:
    c = history["commits"]
    # code5 fails (the revert is in), doc7 too, reapply-f15c passes.
    r = rvharness("bisect", "--tree", history["repo"], "--good", c["code5"], "--bad", c["reapply-f15c"],
                  "--reverse", BACKTRACE, "--out", str(tmp_path), timeout=LONG)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "bisect.json").read_text())
    assert res["culprit"]["id"] == c["reapply-f15c"]
    assert res["verification"]["checks"] == {"culprit": True, "parent": True, "revert": True}
    doc7 = next(t for t in res["tested"] if t["commit"] == c["doc7"] and t["role"] == "bisect")
    assert doc7["verdict"] == "bad" and doc7["boots"] == 0 and doc7["same_image_as"] == c["code5"][:12]
    assert "fixed commit" in (tmp_path / "bisect.md").read_text()


# Timing: the hotplug scenario needs a quiet host (at load 8-15 the fixed
# kernel's onlines exceed the 1000 ms bound and the good endpoint fails).
# On a quiet host it passed in 304 s (2026-11-28, `make test-slow` alone);
# it stays out of CI for those 5 minutes, not for doubt (docs/bisect.md).
@pytest.mark.slow
def test_the_3908_revert_is_found_as_a_latency_regression_with_confidence(history: dict, tmp_path: Path) -> None:
    c = history["commits"]
    r = rvharness("bisect", "--tree", history["repo"], "--good", c["code2"], "--bad", c["lat-revert-3908"],
                  LATENCY, "--out", str(tmp_path), timeout=LONG)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "bisect.json").read_text())
    assert res["culprit"]["id"] == c["lat-revert-3908"]
    assert res["confidence"] >= 0.95
    # The documentation-only commit between them and the revert check boot nothing.
    assert all(t["boots"] == 0 for t in res["tested"] if t["role"] not in ("good endpoint", "bad endpoint"))
    assert any("every online write is fast" in s for s in res["signature"]["checks"])


def test_bisect_run_gives_git_bisect_exit_codes(history: dict, tmp_path: Path) -> None:
    """A linked worktree of the history with no checkout: HEAD is moved with
    update-ref, as `git bisect` would move it; the build slot (keyed by the
    repository) and the kernel cache are the ones the bisects above filled."""
    c = history["commits"]
    wt = tmp_path / "wt"
    subprocess.run(["git", "-C", history["repo"], "worktree", "add", "-q", "--no-checkout", "--detach",
                    str(wt), c["doc3"]], check=True)
    try:
        def at(name: str) -> int:
            subprocess.run(["git", "-C", str(wt), "update-ref", "--no-deref", "HEAD", c[name]], check=True)
            r = rvharness("bisect-run", "--tree", str(wt), BACKTRACE, "--out", str(tmp_path / name), timeout=LONG)
            return r.returncode

        assert at("amb-revert-broken") == 125      # does not build
        assert at("revert-f15c") == 1
        assert at("doc3") == 0
    finally:
        subprocess.run(["git", "-C", history["repo"], "worktree", "remove", "--force", str(wt)], check=True)
    r = rvharness("bisect-run", "--tree", str(tmp_path), BACKTRACE)
    assert r.returncode == 128 and "not a git tree" in r.stderr
