"""rvharness review on real kernels and QEMU: series made with `git
format-patch --cover-letter --thread` from real changes to the Debian 6.12
source (tests/review_series.py). Few scenarios keep CI time down (the
review's rounds repeat only the undecided ones); the full revert series with
the latency scenario is marked slow.

Shared builds: the revert series' prefixes and tip, the fix series' base and
tip, the documentation series' tip are in the kernel cache after the first
run; the session fixtures below run each review once for several tests."""
from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import review_series as rs
import xmlschema
from helpers import ROOT, rvharness

pytestmark = pytest.mark.integration
LONG = 5400          # builds wait for the host-wide build lock
XSD = ROOT / "tests/data/junit-10.xsd"
BACKTRACE = "scenarios/backtrace-ipi.yaml"
KDB = "scenarios/kdb-roundup.yaml"
LATENCY = "scenarios/hotplug-online-latency.yaml"


@pytest.fixture(scope="session")
def hist() -> dict:
    return rs.history()


def _review(*args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = Path(args[args.index("--out") + 1])
    proc = rvharness("review", *args, timeout=LONG)
    data = json.loads((out / "review.json").read_text()) if (out / "review.json").exists() else {}
    return proc, data


def _checks(data: dict, cls: str) -> dict[str, dict]:
    return {c["name"]: c for c in data["comparison"]["checks"] if c["class"] == cls}


BRINGUP = "all CPUs came online at boot"


def _bringup_noise(c: dict) -> bool:
    """The bring-up check of a scenario whose boots missed bring-up and passed
    on the retry: every attempt is a sample, and 3 of 203 boots miss at -j 2
    (docs/measurements.md §bringup), so a clean review can end UNKNOWN there."""
    return c["name"].endswith(": " + BRINGUP) and bool(c["a"]["failed"] or c["b"]["failed"])


def _exit_0_or_bringup_unknown(proc: subprocess.CompletedProcess, data: dict) -> None:
    """Exit 0; or exit 3 with the bring-up check of a retried boot the only
    undecided one (the review says UNKNOWN, as it should, never 1)."""
    msg = proc.stdout[-3000:] + proc.stderr[-3000:]
    if proc.returncode == 3:
        undecided = [c for c in data["comparison"]["checks"] if c["class"] == "undecided"]
        assert undecided and all(_bringup_noise(c) for c in undecided), msg
    else:
        assert proc.returncode == 0, msg


# ------------------------------------------------------------------ revert series

@pytest.fixture(scope="session")
def revert_review(hist: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("review-revert")
    _, files = rs.revert_series(hist, d / "mails")
    mbox = rs.mbox(files, d / "series.mbox")
    # -j 2: each run's two scenarios side by side (harness/parallel), as a reviewer with cores would
    proc, data = _review(str(mbox), "--kernel", "kernels/default.yaml", BACKTRACE, KDB,
                         "-j", "2", "--email", "--out", str(d / "out"))
    return {"proc": proc, "data": data, "out": d / "out", "files": files}


def test_revert_series_new_failures_attributed_to_their_patch(revert_review: dict) -> None:
    proc, data = revert_review["proc"], revert_review["data"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    new = _checks(data, "new failure")
    own = {n: c for n, c in new.items() if ": model: " not in n}
    backtrace = {n: c for n, c in own.items() if n.startswith("backtrace-ipi: ")}
    kdb = {n: c for n, c in own.items() if n.startswith("kdb-roundup: ")}
    assert backtrace and kdb, sorted(new)
    assert {c["patch"] for c in backtrace.values()} == {1}, backtrace
    assert {c["patch"] for c in kdb.values()} == {2}, kdb
    # The model predicts the base: its claims that fail now are attributed too.
    model = {n: c for n, c in new.items() if ": model: " in n}
    assert model and all(c["patch"] in (1, 2) for c in model.values()), model
    # The backtrace counter check fails deterministically, DIFFERENT at the
    # round's level (Fisher one-sided, Holm over the checks, alpha split over the looks).
    row = new["backtrace-ipi: backtrace IPI counted once on every other CPU"]
    runs = data["comparison"]["runs_per_scenario"]["backtrace-ipi"]
    assert runs in (5, 9) and (row["a"], row["b"]) == ({"passed": runs, "failed": 0}, {"passed": 0, "failed": runs})
    assert row["decision"] == "DIFFERENT" and row["direction"] == "worse" and row["p"] <= row["level"]
    # Placing changes in 3 patches asks about the two intermediate prefixes at most
    # (in the order the posterior asks), and states P(patch).
    assert sorted(data["stats"]["prefixes_asked"]) == [1, 2]
    assert all("with P = " in c["attribution"] for c in own.values()), own
    assert data["stats"]["builds"]["base"] == "cached"


def test_revert_series_review_md_reads_as_a_reply(revert_review: dict) -> None:
    text = (revert_review["out"] / "review.md").read_text()
    first = text.splitlines()[0]
    assert first.startswith('rvharness review of "riscv: revert three IPI changes" (v1, 3 patches): ')
    # Delta first: the new failures come before the key: value block and the unchanged summary.
    i_new, i_base, i_unch = text.index("New failures"), text.index("\nbase:"), text.index("\nSame\n")
    assert i_new < i_base < i_unch
    assert '1/3 Revert "RISC-V: Enable IPI CPU Backtrace":' in text
    assert '2/3 Revert "RISC-V: Implement kgdb_roundup_cpus() to enable future NMI Roundup":' in text
    flat = " ".join(text.split())        # wrapped at 76 columns
    assert "Fisher's exact test, one-sided" in flat and "DIFFERENT (worse), p = " in flat and "Holm at" in flat
    assert '(v1, 3 patches): DIFFERENT (worse): ' in first
    for key in ("base:", "series:", "message-id:", "arch:", "compiler:", "config:", "scenarios:",
                "decision:", "reproduce:"):
        assert f"\n{key}" in text, key
    assert "rvharness review " in text.split("reproduce:")[1].splitlines()[0]
    assert "--repeats 9 --alpha 0.05 -j 2 " in flat
    # every run of both kernels left its artifacts, as a serial run lays them out
    runs = revert_review["data"]["comparison"]["runs_per_scenario"]
    for label in ("A", "B"):
        for scn in ("backtrace-ipi", "kdb-roundup"):
            logs = sorted((revert_review["out"] / "runs" / label / scn).glob("run-*/console.log"))
            assert len(logs) == runs[scn] and (revert_review["out"] / "runs" / label / scn / "run-1").is_dir()


def test_revert_series_reply_mail_reports(revert_review: dict) -> None:
    msg = email.message_from_bytes((revert_review["out"] / "reply.eml").read_bytes(),
                                   policy=email.policy.default)
    cover_id = rs.msgid_of(revert_review["files"][0])
    assert msg["In-Reply-To"] == f"<{cover_id}>"
    assert f"<{cover_id}>" in msg["References"]
    assert msg["Subject"] == "Re: [PATCH 0/3] riscv: revert three IPI changes"
    body = msg.get_content()
    assert "| Reported-by: rvharness <rvharness@localhost>" in body and "| Closes: file://" in body
    assert "Tested-by:" not in body


def test_revert_series_junit_and_patchwork(revert_review: dict) -> None:
    out = revert_review["out"]
    xmlschema.XMLSchema(str(XSD)).validate(str(out / "junit.xml"))
    from junitparser import Failure, JUnitXml
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    failed = {c.name for s in xml for c in s if any(isinstance(r, Failure) for r in c.result)}
    new = set(_checks(revert_review["data"], "new failure"))
    assert new and new <= failed
    checks = [json.loads((out / "patchwork" / f"{i:04d}.json").read_text()) for i in (1, 2, 3)]
    # Patch 3 changes nothing these scenarios see: success, or a warning when the
    # review's only undecided check is a retried boot's bring-up (1.5% of boots).
    undecided = [c for c in revert_review["data"]["comparison"]["checks"] if c["class"] == "undecided"]
    want3 = "warning" if undecided and all(_bringup_noise(c) for c in undecided) else "success"
    assert [c["state"] for c in checks] == ["fail", "fail", want3], checks
    assert all(c["context"] == "rvharness" and c["target_url"].endswith("review.md") for c in checks)
    assert ": model: " not in checks[1]["description"] and "kdb-roundup: " in checks[1]["description"]


@pytest.mark.slow
def test_revert_series_full_with_latency(hist: dict, tmp_path: Path) -> None:
    """All three reverts, the latency scenario among them, 3 repeats: the
    latency check goes to 3/3 (needs a quiet host: docs/bisect.md)."""
    _, files = rs.revert_series(hist, tmp_path / "mails")
    proc, data = _review(str(rs.mbox(files, tmp_path / "s.mbox")), BACKTRACE, KDB, LATENCY,
                         "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    new = {n: c for n, c in _checks(data, "new failure").items() if ": model: " not in n}
    by_scn = {}
    for n, c in new.items():
        by_scn.setdefault(n.split(": ")[0], set()).add(c["patch"])
    assert by_scn == {"backtrace-ipi": {1}, "kdb-roundup": {2}, "hotplug-online-latency": {3}}, new


# ------------------------------------------------------------------ fix series (--tree)

@pytest.fixture(scope="session")
def fix_review(hist: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The kgdb RVC fix on the Debian source without it, from the git tree:
    the recipe gives only the config (no patches), so the base lacks the fix."""
    d = tmp_path_factory.mktemp("review-fix")
    base, files = rs.fix_series(hist, d / "mails")
    (d / "configs").mkdir()
    shutil.copy(ROOT / "kernels/configs/riscv-ipi.config", d / "configs/riscv-ipi.config")
    recipe = d / "nofix.yaml"
    recipe.write_text(f"description: the Debian source without the kgdb RVC fix\narch: riscv64\n"
                      f"source:\n  tree: {hist['repo']}\nbase: tinyconfig\nfragments: [configs/riscv-ipi.config]\n")
    before = _tree_state(hist["repo"])
    proc, data = _review(str(d / "mails"), "--tree", hist["repo"], "--base", base, "--kernel", str(recipe),
                         KDB, "-j", "2", "--out", str(d / "out"))
    return {"proc": proc, "data": data, "out": d / "out", "tree_before": before}


def _tree_state(repo: str) -> tuple:
    git_dir = Path(subprocess.run(["git", "-C", repo, "rev-parse", "--absolute-git-dir"], capture_output=True,
                                  text=True, check=True).stdout.strip())
    refs = subprocess.run(["git", "-C", repo, "for-each-ref"], capture_output=True, text=True).stdout
    head = (git_dir / "HEAD").read_text()
    index = git_dir / "index"
    return head, refs, index.stat().st_mtime_ns if index.exists() else None


def test_fix_series_kdb_go_checks_fixed(fix_review: dict, hist: dict) -> None:
    proc, data = fix_review["proc"], fix_review["data"]
    _exit_0_or_bringup_unknown(proc, data)
    fixed = _checks(data, "fixed")
    assert "kdb-roundup: kdb sees every CPU respond to the round-up" in fixed, sorted(fixed)
    # Leaving kdb with go oopsed on the base: the crash checks go away with the fix.
    assert "kdb-roundup: kernel did not crash" in fixed, sorted(fixed)
    assert all(c["patch"] == 1 for c in fixed.values())
    assert not _checks(data, "new failure") and not _checks(data, "still failing")
    gone = [t["title"] for t in data["comparison"]["titles"] if t["class"] == "report gone"]
    assert any("kgdb_arch_handle_qxfer_pkt" in t for t in gone), gone
    text = (fix_review["out"] / "review.md").read_text()
    assert "Fixed (DIFFERENT: fail less often with the series)" in text
    # The user's tree was only read: its checkout, index and refs are as before
    # (compared, not `git status`: that stats 86k files, 48 s under load).
    assert _tree_state(hist["repo"]) == fix_review["tree_before"]


# ------------------------------------------------------------------ v1 + v2 thread, documentation only

@pytest.fixture(scope="session")
def thread_review(hist: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A thread: v1 (two documentation notes), a reply to v1, v2 (other
    notes) sent in reply to v1's cover, a Reviewed-by reply to v2's 1/2."""
    d = tmp_path_factory.mktemp("review-thread")
    _, v1 = rs.doc_series(hist, d / "v1", version=1, tag="a")
    _, v2 = rs.doc_series(hist, d / "v2", version=2, tag="b")
    replies = [rs.reply(v1[1], "Old Reviewer <old@example.org>", "Please reword.\n", "r-v1@example.org"),
               rs.reply(v2[1], "Rita Reviewer <rita@example.org>",
                        "> note\n\nLooks good.\n\nReviewed-by: Rita Reviewer <rita@example.org>\n",
                        "r-v2@example.org")]
    mbox = rs.thread_mbox(v1, v2, replies, d / "thread.mbox")
    proc, data = _review(str(mbox), "--kernel", "kernels/default.yaml", BACKTRACE, "-j", "2",
                         "--email", "--out", str(d / "out"))
    return {"proc": proc, "data": data, "out": d / "out", "v2": v2}


def test_thread_v2_tested_and_trailer_collected(thread_review: dict) -> None:
    proc, data = thread_review["proc"], thread_review["data"]
    _exit_0_or_bringup_unknown(proc, data)
    s = data["series"]
    assert s["version"] == 2
    assert "v2 tested" in s["note"] and "v1, v2" in s["note"]
    assert [p["subject"] for p in s["patches"]] == ["Documentation: howto: review note b1",
                                                    "Documentation: howto: review note b2"]
    assert s["patches"][0]["trailers"] == ["Reviewed-by: Rita Reviewer <rita@example.org>"]
    text = (thread_review["out"] / "review.md").read_text()
    assert "v2 tested" in text and "Reviewed-by: Rita Reviewer <rita@example.org> (1/2)" in text


def test_documentation_only_series_changes_nothing(thread_review: dict) -> None:
    data = thread_review["data"]
    checks = [c for c in data["comparison"]["checks"] if not _bringup_noise(c)]
    classes = {c["class"] for c in checks}
    assert classes == {"unchanged"}, [c for c in checks if c["class"] != "unchanged"]
    # SAME needs 5 runs a side: one in the first round, four in the second
    # (9 when a retried boot's bring-up sample leaned and asked for a third)
    noisy = len(checks) < len(data["comparison"]["checks"])
    assert data["comparison"]["a_judged"] == data["comparison"]["b_judged"] in ((5, 9) if noisy else (5,))
    assert data["stats"]["prefixes_asked"] == []
    msg = email.message_from_bytes((thread_review["out"] / "reply.eml").read_bytes(),
                                   policy=email.policy.default)
    assert msg["Subject"] == "Re: [PATCH v2 0/2] Documentation: two notes"
    assert msg["In-Reply-To"] == f"<{rs.msgid_of(thread_review['v2'][0])}>"
    body = msg.get_content()
    states = {json.loads(f.read_text())["state"] for f in (thread_review["out"] / "patchwork").glob("0*.json")}
    assert "Reported-by" not in body
    if thread_review["proc"].returncode == 0:
        assert "Tested-by: rvharness <rvharness@localhost>" in body and states == {"success"}
    else:                      # UNKNOWN (bring-up noise): neither tag, patchwork says so
        assert "Tested-by" not in body and states == {"warning"}


# ------------------------------------------------------------------ bad input

def _one_line_error(*args: str) -> str:
    out = Path(args[args.index("--out") + 1])
    r = rvharness("review", *args, timeout=LONG)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert not (out / "review.md").exists()
    return lines[0]


def test_bad_series_one_line_exit_2(hist: dict, tmp_path: Path) -> None:
    _, files = rs.revert_series(hist, tmp_path / "rev")
    missing = rs.mbox([files[0], files[1], files[3]], tmp_path / "missing.mbox")
    err = _one_line_error(str(missing), BACKTRACE, "--out", str(tmp_path / "o1"))
    assert err.endswith("missing.mbox: v1 'riscv: revert three IPI changes': patch 2/3 missing"), err
    cover_only = rs.mbox([files[0]], tmp_path / "cover.mbox")
    assert "no patches found" in _one_line_error(str(cover_only), BACKTRACE, "--out", str(tmp_path / "o2"))
    _, uf = rs.unappliable_series(hist, tmp_path / "unapp")
    err = _one_line_error(str(rs.mbox(uf, tmp_path / "unapp.mbox")), BACKTRACE, "--out", str(tmp_path / "o3"))
    assert ("unapp.mbox: patch 2/2 'panic: another harmless string' does not apply: kernel/panic.c, hunk #1 "
            "(at line ") in err, err
    err = _one_line_error(str(tmp_path / "rev"), BACKTRACE, "--version", "3", "--out", str(tmp_path / "o4"))
    assert "--version 3: the mbox holds v1" in err, err
    assert _one_line_error(str(tmp_path / "rev"), BACKTRACE, "-j", "0", "--out", str(tmp_path / "o5")) \
        .endswith("-j 0: expected at least 1")


def test_base_that_does_not_build(hist: dict, tmp_path: Path) -> None:
    """The history's 'break' commit calls a function that does not exist
    (its failed build is remembered by the kernel cache after one try)."""
    brk = hist["commits"]["break"]
    tip = rs.chain(hist["repo"], brk, [("Documentation: a note on a broken base",
                                        ("append", ("Documentation/process/changes.rst", ".. note\n")))], 80)[-1]
    rs.git(hist["repo"], "format-patch", "-q", "-o", str(tmp_path / "p"), f"{brk}..{tip}")
    err = _one_line_error(str(tmp_path / "p"), "--tree", hist["repo"], "--base", brk, BACKTRACE,
                          "--out", str(tmp_path / "o"))
    assert err.startswith(f"rvharness: error: the base does not build ({brk[:7]}"), err
    assert "rvh_no_such_function" in err, err
