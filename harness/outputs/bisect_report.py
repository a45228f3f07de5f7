"""bisect.md (plain text that reads well pasted into a mail) and JUnit
(one testcase per tested commit) from the bisect result document."""
from __future__ import annotations

import textwrap

from harness.decide.bisect_step import (BAD, CLEAN, GOOD, INFRA, INFRA_V, SIGNATURE, SKIP_V, SKIPPED,
                                         UNRELATED)
from harness.outputs.junit import Result, document, error, failure, skipped, testcase, testsuite


def _runs(c: dict | None) -> str:
    if c is None:
        return "not run"
    if c["verdict"] in (SKIP_V, INFRA_V) and c["runs"] == 0:
        return f"{c['verdict']}: {c['reason']}"
    return f"{c['signature']}/{c['runs']} runs failed with the signature, {c['clean']}/{c['runs']} clean" + \
        (f", {c['unrelated']} unrelated" if c["unrelated"] else "") + \
        (f", {c['infra']} infra" if c["infra"] else "")


def _odds_lines(r: dict, what: str) -> list[str]:
    """P(culprit), then the clean-run power said to be something else."""
    lines: list[str] = []
    odds = r.get("odds")
    if odds:
        lines += [f"P(culprit) = {odds['p_culprit']:.3f} that {odds['culprit'][:12]} is the {what} commit "
                  f"(target {odds['target']:g}): the posterior over the {len(odds['commits']) - 1} candidate "
                  f"commits from every run of every commit, {odds['extra_runs']} of them asked for by the "
                  f"posterior (budget {odds['budget']}). docs/bisect.md gives the model and its calibration.", ""]
    conf = r.get("confidence")
    if conf is not None:
        lines += [f"Clean-run power: {conf:.3f} (target {r['params']['confidence']:g}); this is not P(culprit). "
                  f"It is the chance that a bad commit would have failed at least once in k = "
                  f"{r['runs_per_good']} runs, with p = {r['failure_rate']:.2f} the failing endpoint's failure "
                  f"rate (Laplace estimate): 1 - (1-p)^k, (1-p)^k = "
                  f"{(1 - r['failure_rate']) ** r['runs_per_good']:.3f}.", ""]
    return lines


def markdown(r: dict) -> str:
    rev = r.get("params", {}).get("reverse", False)
    what = "fixed" if rev else "first bad"
    lines: list[str] = []
    status = r.get("status")
    culprit = r.get("culprit")
    if status == "found" and culprit:
        lines.append(f"rvharness bisect: {culprit['short']} (\"{culprit['subject']}\") is the {what} commit")
    elif status == "inconclusive":
        lines.append(f"rvharness bisect: inconclusive: {r.get('message', '')}")
    else:
        lines.append(f"rvharness bisect: stopped: {r.get('message', '')}")
    lines.append("")
    if culprit:
        lines += [f"commit {culprit['id']}", f"Author: {culprit['author']}", f"Date:   {culprit['date']}", "",
                  f"    {culprit['subject']}", ""]
        if culprit.get("diffstat"):
            lines += [culprit["diffstat"].rstrip(), ""]
    odds = r.get("odds")
    lines += _odds_lines(r, what)
    if r.get("flags"):
        lines += ["Flags:"] + [f"  - {f}" for f in r["flags"]] + [""]
    ver = r.get("verification")
    if ver:
        want = ("passes", "fails", "fails") if rev else ("fails", "passes", "passes")
        lines.append(f"Verification (N = {ver['n']} runs each):")
        for (key, label), w in zip((("culprit", "culprit"), ("parent", "its parent"),
                                    ("revert", "its revert on top of --bad")), want):
            ok = "ok" if ver["checks"][key] else "NOT VERIFIED"
            c = ver[key]
            who = f" {c['short']}" if c and key != "revert" else ""
            lines.append(f"  - {label}{who} {w} N/N: {ok}: {_runs(c)}")
        if ver.get("revert_note"):
            lines.append(f"  - {ver['revert_note']}")
        lines.append("")
    cands = r.get("candidates") or []
    if len(cands) > 1:
        lines.append(f"Candidates ({len(cands)}), the {what} commit is one of:")
        lines += [f"  - {c['short']} {c['subject']}" for c in cands]
        lines.append("")
    sig = r.get("signature")
    if sig:
        lines.append("Signature (what failed on the failing endpoint" +
                     (", narrowed by --checks" if sig["narrowed"] else "") + "):")
        lines += [f"  - {c}" for c in sig["checks"]] + [f"  - report: {t}" for t in sig["titles"]]
        lines.append("")
    lines += ["Reproduce:", "", textwrap.indent(r.get("command", ""), "    "), ""]
    tested = r.get("tested") or []
    if tested:
        lines.append("Tested commits (runs: clean/signature/other/infra):")
        lines.append("")
        lines.append("| # | commit | role | verdict | runs | build | reason |")
        lines.append("|---|---|---|---|---|---|---|")
        for t in tested:
            build = t["build"] + (" (cached)" if t["build_cached"] else f" {t['build_seconds']:.0f}s")
            reason = t["reason"].replace("|", "/")[:120]
            subject = t["subject"][:40].replace("|", "/")     # a '|' would end the cell
            lines.append(f"| {t['step']} | {t['short'][:12]} {subject} | {t['role']} | "
                         f"{t['verdict']} | {t['clean']}/{t['signature']}/{t['unrelated']}/{t['infra']} | "
                         f"{build} | {reason} |")
        lines.append("")
    if odds:
        order = "newest first (--reverse)" if rev else "oldest first"
        lines += [f"Every candidate's runs, {order} (failed with the signature / judged runs, P(culprit)):", "",
                  "| commit | failed/runs | P(culprit) |", "|---|---|---|"]
        lines += [f"| {c['short']} | {c['failed']}/{c['runs']} | {c['p_culprit']:.4f} |" for c in odds["commits"]]
        lines.append("")
    st = r.get("stats")
    if st:
        wait = st.get("build_wait_seconds", 0)
        lines.append(f"{st['steps']} steps, {st['builds']} builds ({st['build_seconds']:.0f} s"
                     + (f", plus {wait:.0f} s waiting for other builds" if wait >= 1 else "") + "), "
                     f"{st['boots']} boots ({st['boot_seconds']:.0f} s), {st['wall_seconds']:.0f} s in all"
                     + (f" over {st['sessions']} sessions (resumed)." if st.get("sessions", 1) > 1 else "."))
    return "\n".join(lines) + "\n"


def junit(r: dict) -> str:
    """One testcase per tested commit (written by harness/outputs/junit.py)."""
    cases = []
    for t in r.get("tested") or []:
        res: Result | None = None
        # A step's verdict, or for a run the posterior asked for, that run's class.
        if t["verdict"] in (BAD, SIGNATURE):
            res = failure(f"{t['verdict']}: {t['reason']}")
        elif t["verdict"] in (SKIP_V, UNRELATED, SKIPPED):
            res = skipped(t["reason"])
        elif t["verdict"] in (INFRA_V, INFRA):
            res = error(f"infra: {t['reason']}")
        elif t["verdict"] not in (GOOD, CLEAN):
            res = error(t["verdict"])
        cases.append(testcase(f"{t['step']:02d} {t['short']} {t['subject']}", f"bisect.{t['role'].replace(' ', '-')}",
                              t["seconds"], res,
                              system_out=f"verdict: {t['verdict']}\nreason: {t['reason']}\n"
                                         f"runs clean/signature/other/infra: {t['clean']}/{t['signature']}/"
                                         f"{t['unrelated']}/{t['infra']}\nimage sha256: {t['image']}\n"
                                         f"build: {t['build']} key {t['key']}"))
    odds = r.get("odds")
    if odds:
        ok = odds["p_culprit"] >= odds["target"]
        cases.append(testcase(f"P(culprit) = {odds['p_culprit']:.3f} for {odds['culprit'][:12]}", "bisect.posterior",
                              0.0, None if ok else failure(f"P(culprit) = {odds['p_culprit']:.3f} is below the "
                                                           f"target {odds['target']:g}"),
                              system_out="\n".join(f"{c['short']} failed {c['failed']}/{c['runs']} "
                                                   f"P(culprit) {c['p_culprit']:.4f}" for c in odds["commits"])))
    # Unlike run and review, bisect's junit.xml has always kept the total skipped count on <testsuites>.
    return document("rvharness bisect", [testsuite("rvharness bisect", cases)], skipped_total=True)
