"""review.md: what a series changes, delta first, in plain text that reads
as the body of a mail reply (Markdown only where plain text reads the same:
headings underlined, lists with '-', no tables, lines under 80 columns where
the names allow)."""
from __future__ import annotations

import textwrap
from collections import defaultdict

from harness.decide.ab_counts import FIXED, FLAKY, NEW, STILL, UNCHANGED
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
             f"{rv.headline()}."]
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
        lines += _heading("New failures (pass on the base, fail with the series)")
        lines += _check_lines(rv, own_new)
    if cmp.new_titles:
        lines += _heading("New kernel reports (seen with the series, never on the base)")
        for patch, group in _by_patch(rv, cmp.new_titles).items():
            lines += ["", f"{rv.patch_label(patch)}:"]
            for t in group:
                lines.append(f"- {t.title}")
                lines += _wrap(f"in {t.b}/{cmp.b_judged} runs with the series, 0/{cmp.a_judged} on the base; "
                               f"scenarios: {', '.join(t.scenarios) or '-'}")
    if model_new:
        lines += _heading("New disagreements with the reference model")
        lines += _wrap("The model predicts the base's kernel; these claims held on the base and "
                       "fail with the series.", "")
        lines += _model_lines(rv, model_new)
    fixed = cmp.of(FIXED)
    if fixed:
        lines += _heading("Fixed (fail on the base, pass with the series)")
        lines += _check_lines(rv, [c for c in fixed if not c.model])
        if any(c.model for c in fixed):
            lines += ["", "Model claims that now hold:"] + _model_lines(rv, [c for c in fixed if c.model])
    gone = [t for t in cmp.titles if t not in cmp.new_titles]
    if gone:
        lines += _heading("Kernel reports gone with the series")
        lines += [f"- {t.title} (in {t.a}/{cmp.a_judged} runs on the base)" for t in gone]
    still, flaky = cmp.of(STILL), cmp.of(FLAKY)
    if still or flaky or cmp.a_infra:
        lines += _heading("The base already fails (not blamed on the series)")
        for c in still:
            lines.append(f"- {c.name}: {c.counts_text()}")
        for c in flaky:
            lines.append(f"- {c.name}: flaky on the base, {c.counts_text()}")
        for why in cmp.a_infra:
            lines += _wrap(f"- a run of the base said nothing about the kernel: {why}", "")
    if cmp.b_infra:
        lines += _heading("Runs with the series that said nothing about the kernel")
        lines += [f"- {why}" for why in cmp.b_infra]
    st = rv.stats
    lines += ["", ""] + _facts(rv)
    unchanged = cmp.of(UNCHANGED)
    if rv.build_break is None:
        own = sum(not c.model for c in unchanged)
        lines += _heading("Unchanged")
        lines += _wrap(f"{len(unchanged)} check{'s' * (len(unchanged) != 1)} ({own} scenario expectations, "
                       f"{len(unchanged) - own} model "
                       f"claims) gave the same result on the base and with the series in every run: "
                       f"{cmp.a_judged} runs of the base and {cmp.b_judged} with the series, interleaved, "
                       f"of {len(rv.scenarios)} scenario{'s' * (len(rv.scenarios) != 1)}.", "")
    lines += ["", f"Work: {len(st.builds)} kernels ({', '.join(f'{k} {v}' for k, v in st.builds.items())}), "
                  f"{st.build_seconds:.0f} s building; {st.boots} boots, {st.boot_seconds:.0f} s running; "
                  f"{st.wall_seconds:.0f} s in all."]
    return "\n".join(lines) + "\n"


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
        ("repeats", f"{rv.params.repeats} per kernel, interleaved base, series, base, series"),
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
