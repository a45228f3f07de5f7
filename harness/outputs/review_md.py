"""review.md: what a series changes, delta first, in plain text that reads
as the body of a mail reply (Markdown only where plain text reads the same:
headings underlined, lists with '-', no tables, lines under 80 columns where
the names allow)."""
from __future__ import annotations

import textwrap
from collections import defaultdict

from harness.decide.ab_counts import FIXED, FLAKY, LEANS_BETTER, NEW, STILL, UNCHANGED, UNDECIDED
from harness.review.ab import CheckDelta
from harness.review.record import Review

WIDTH = 76


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


def _heading(title: str) -> list[str]:
    return ["", title, "-" * len(title)]


def _by_patch(rv: Review, items: list) -> dict:
    groups: dict = defaultdict(list)
    for it in items:
        groups[it.patch].append(it)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))


def _check_lines(rv: Review, checks: list[CheckDelta]) -> list[str]:
    lines: list[str] = []
    for patch, group in _by_patch(rv, checks).items():
        lines += ["", f"{rv.patch_label(patch)}:"]
        for c in group:
            lines.append(f"- {c.name}")
            lines += _wrap(f"{c.significance}." if c.significance else c.counts_text())
            if c.attribution and rv.n > 1:
                lines += _wrap(f"Attribution: {c.attribution}.")
    return lines


def _model_lines(rv: Review, checks: list[CheckDelta]) -> list[str]:
    """Model claims in one line per patch and scenario: a revert makes dozens."""
    lines: list[str] = []
    for patch, group in _by_patch(rv, checks).items():
        per_scn: dict[str, list[CheckDelta]] = defaultdict(list)
        for c in group:
            per_scn[c.scenario].append(c)
        lines += ["", f"{rv.patch_label(patch)}:"]
        for scn, cs in per_scn.items():
            names = ", ".join(c.name.split(": model: ", 1)[1] for c in cs[:6])
            more = f" and {len(cs) - 6} more" if len(cs) > 6 else ""
            lines += textwrap.wrap(f"- {scn}: {len(cs)} claim{'s' * (len(cs) != 1)} ({names}{more}); "
                                   f"{cs[0].counts_text()}", WIDTH, subsequent_indent="  ",
                                   break_long_words=False, break_on_hyphens=False)
    return lines


def render(rv: Review) -> str:
    s, cmp = rv.series, rv.cmp
    lines = [f"rvharness review of \"{s.subject}\" (v{s.version}, {rv.n} patch{'es' * (rv.n != 1)}): "
             f"{rv.verdict}: {rv.headline()}."]
    if s.note:
        lines += _wrap(s.note[0].upper() + s.note[1:] + ".", "")
    if rv.build_break is not None:
        k, why = rv.build_break
        lines += _heading("Build failure")
        lines += ["", f"{rv.patch_label(k)}:"] + _wrap(why)
        lines += _wrap(f"The base and base+1..{k - 1} build." if k > 1 else "The base builds.", "")
    own_new = [c for c in cmp.of(NEW) if not c.model]
    model_new = [c for c in cmp.of(NEW) if c.model]
    if own_new:
        lines += _heading("New failures (DIFFERENT: fail more often with the series)")
        lines += _check_lines(rv, own_new)
    if cmp.new_titles:
        lines += _heading("New kernel reports (seen with the series, never on the base)")
        for patch, group in _by_patch(rv, cmp.new_titles).items():
            lines += ["", f"{rv.patch_label(patch)}:"]
            for t in group:
                lines.append(f"- {t.title}")
                lines += _wrap(f"in {t.b}/{cmp.b_judged} runs with the series, {t.a}/{cmp.a_judged} on the "
                               f"base; {t.verdict.text() if t.verdict else ''}; scenarios: "
                               f"{', '.join(t.scenarios) or '-'}")
    if model_new:
        lines += _heading("New disagreements with the reference model")
        lines += _wrap("The model predicts the base's kernel; these claims fail more often with the "
                       "series (DIFFERENT, worse).", "")
        lines += _model_lines(rv, model_new)
    fixed = cmp.of(FIXED)
    if fixed:
        lines += _heading("Fixed (DIFFERENT: fail less often with the series)")
        lines += _check_lines(rv, [c for c in fixed if not c.model])
        if any(c.model for c in fixed):
            lines += ["", "Model claims that now hold:"] + _model_lines(rv, [c for c in fixed if c.model])
    lines += _undecided_lines(rv)
    gone = [t for t in cmp.titles if t.cls == "report gone"]
    if gone:
        lines += _heading("Kernel reports gone with the series")
        lines += [f"- {t.title} (in {t.a}/{cmp.a_judged} runs on the base)" for t in gone]
    still, flaky, leans = cmp.of(STILL), cmp.of(FLAKY), [c for c in cmp.of(LEANS_BETTER) if not c.model]
    if still or flaky or leans or cmp.a_infra:
        lines += _heading("The base already fails (not blamed on the series)")
        for c in still:
            lines.append(f"- {c.name}: {c.counts_text()}")
        for c in flaky:
            lines.append(f"- {c.name}: fails on both sides at rates the runs cannot tell apart, "
                         f"{c.counts_text()}")
        for c in leans:
            lines.append(f"- {c.name}: fails less often with the series, not significantly: "
                         f"{c.counts_text()}")
        for why in cmp.a_infra:
            lines += _wrap(f"- a run of the base said nothing about the kernel: {why}", "")
    if cmp.b_infra:
        lines += _heading("Runs with the series that said nothing about the kernel")
        lines += [f"- {why}" for why in cmp.b_infra]
    st = rv.stats
    lines += ["", ""] + _facts(rv)
    if rv.build_break is None:
        lines += _heading("Same")
        lines += _wrap(_same_text(rv), "")
    lines += ["", f"Work: {len(st.builds)} kernels ({', '.join(f'{k} {v}' for k, v in st.builds.items())}), "
                  f"{st.build_seconds:.0f} s building; {st.boots} boots, {st.boot_seconds:.0f} s running; "
                  f"{st.wall_seconds:.0f} s in all."]
    return "\n".join(lines) + "\n"


def _undecided_lines(rv: Review) -> list[str]:
    cmp = rv.cmp
    undecided = cmp.of(UNDECIDED)
    odd_titles = [t for t in cmp.titles if t.cls == "report undecided"]
    if not undecided and not odd_titles:
        return []
    lines = _heading("Undecided (UNKNOWN within the budget)")
    lines += _wrap(f"Neither SAME nor DIFFERENT after {cmp.rounds} round{'s' * (cmp.rounds != 1)} "
                   f"(at most {cmp.design.max_runs} runs a side of a scenario): the counts lean, or "
                   "too few runs were judged. Each says what it would have caught.", "")
    for c in (c for c in undecided if not c.model):
        lines.append(f"- {c.name}")
        lines += _wrap(c.significance + ".")
    for t in odd_titles:
        lines.append(f"- report: {t.title}")
        lines += _wrap((t.verdict.text() if t.verdict else "") + ".")
    if any(c.model for c in undecided):
        lines += ["", "Model claims:"] + _model_lines(rv, [c for c in undecided if c.model])
    return lines


def _same_text(rv: Review) -> str:
    """SAME in one paragraph: how many, and the smallest rise the runs
    would have caught with 80% probability (the worst over the checks)."""
    cmp = rv.cmp
    same = cmp.of(STILL, FLAKY, UNCHANGED)
    own = sum(not c.model for c in same)
    runs = sorted(set(cmp.runs_per_scenario.values()))
    span = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]} to {runs[-1]}" if runs else "0"
    text = (f"{len(same)} check{'s' * (len(same) != 1)} ({own} scenario checks, {len(same) - own} model "
            f"claims) are SAME on the base and with the series, with {span} runs a side of each scenario")
    never = [c for c in same if c.a[1] == 0]
    worst = max((c.verdict.detectable for c in never if c.verdict and c.verdict.detectable is not None),
                default=None)
    if worst is not None:
        text += (f"; for the {len(never)} that never failed on the base, a rise from 0% to {100 * worst:.0f}% "
                 "would have been seen with 80% probability" if worst <= 1 else
                 f"; for some of the {len(never)} that never failed on the base, too few runs were judged "
                 "for any rise to have been seen with 80% probability")
    return text + "."


def _design_text(rv: Review) -> str:
    d, cmp = rv.cmp.design, rv.cmp
    return (f"SAME/DIFFERENT/UNKNOWN per check (Fisher's exact test, one-sided), family-wise alpha "
            f"{d.alpha:g} over {len(cmp.checks) + len(cmp.titles)} checks and report titles (Holm) and "
            f"{d.max_rounds} looks (Bonferroni: {d.level:.3g} a look); {cmp.rounds} round"
            f"{'s' * (cmp.rounds != 1)}: {d.first} run a side of every scenario, then {d.step} more of the "
            f"undecided ones, at most {d.max_runs}")


def _facts(rv: Review) -> list[str]:
    s, st = rv.series, rv.stats
    n_mid = max(0, rv.n - 1)
    asked = ", ".join(f"1..{k}" for k in st.prefixes_asked) or "none"
    facts = [
        ("base", rv.base_text),
        ("series", f"{s.subject} (v{s.version}, {rv.n} patch{'es' * (rv.n != 1)}, {s.author})"),
        ("message-id", f"<{s.thread_msgid}>" if s.thread_msgid else "-"),
        ("base-commit", s.base_commit or "-"),
        ("arch", rv.arch),
        ("compiler", rv.compiler),
        ("config", f"sha256 {rv.config_a} (base), {rv.config_b} (series)"),
        ("scenarios", ", ".join(rv.scenarios)),
        ("decision", _design_text(rv)),
        ("attribution", f"{len(st.prefixes_asked)} of {n_mid} intermediate prefixes tested ({asked})"
                        if n_mid else "one patch, nothing to bisect"),
        ("artifacts", str(rv.out.resolve())),
        ("reproduce", rv.params.command(rv.out)),
    ]
    trailers = s.trailers()
    if trailers:
        facts.append(("trailers", "; ".join(f"{t.line()} ({where})" for where, t in trailers)))
    width = max(len(k) for k, _ in facts) + 1
    return [f"{(k + ':'):<{width}} {v}" for k, v in facts]
