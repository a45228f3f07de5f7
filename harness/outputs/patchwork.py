"""Patchwork checks, one JSON file per patch (OUT/patchwork/NNNN.json),
holding exactly the fields the patchwork checks API takes (POST
/api/patches/<id>/checks/): state, target_url, context, description. A
script that knows the patch ids posts them; index.json maps each file to
the patch's message-id and subject, which is how patchwork finds a patch."""
from __future__ import annotations

import json
from pathlib import Path

from harness.decide.ab_counts import FIXED, NEW, UNDECIDED
from harness.review.record import Review

CONTEXT = "rvharness"
DESCRIPTION_MAX = 255     # patchwork's description is a short line


def check_for(rv: Review, k: int) -> dict:
    cmp = rv.cmp
    url = (rv.out / "review.md").resolve().as_uri()
    # The scenario's own checks first: they name what broke; model claims follow.
    new = (sorted((c for c in cmp.of(NEW) if c.patch == k), key=lambda c: c.model)
           + [t for t in cmp.new_titles if t.patch == k])
    unplaced = [c for c in cmp.of(NEW) if c.patch is None] + [t for t in cmp.new_titles if t.patch is None]
    fixed = [c for c in cmp.of(FIXED) if c.patch == k]
    if rv.build_break is not None and rv.build_break[0] == k:
        state, desc = "fail", f"the build breaks here: {rv.build_break[1]}"
    elif rv.build_break is not None and k > rv.build_break[0]:
        state, desc = "warning", f"not tested: the build breaks at patch {rv.build_break[0]}/{rv.n}"
    elif new:
        first = new[0].name if hasattr(new[0], "name") else f"report: {new[0].title}"
        p = min(x.verdict.p for x in new if x.verdict) if any(x.verdict for x in new) else None
        state, desc = "fail", (f"{len(new)} new failure{'s' * (len(new) != 1)} brought by this patch"
                               f"{f' (p = {p:.2g})' if p is not None else ''}: {first}")
    elif unplaced:
        state, desc = "warning", (f"{len(unplaced)} new failure(s) in the series could not be placed on "
                                  "one patch")
    elif cmp.undecided:
        state, desc = "warning", (f"undecided: {len(cmp.of(UNDECIDED))} checks neither SAME nor DIFFERENT "
                                  f"within {cmp.design.max_runs} runs a side (alpha {cmp.design.alpha:g})")
    elif fixed:
        state, desc = "success", f"fixes {len(fixed)} check{'s' * (len(fixed) != 1)}, nothing worse"
    else:
        state, desc = "success", (f"SAME: {len(cmp.checks)} checks, {cmp.a_judged}+{cmp.b_judged} "
                                  f"runs base/series, alpha {cmp.design.alpha:g}")
    return {"state": state, "target_url": url, "context": CONTEXT, "description": desc[:DESCRIPTION_MAX]}


def write(rv: Review, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    written, index = [], {}
    for p in rv.series.patches:
        f = dest / f"{p.number:04d}.json"
        f.write_text(json.dumps(check_for(rv, p.number), indent=2) + "\n")
        index[f.name] = {"msgid": p.msgid, "subject": p.subject, "number": p.number, "total": p.total}
        written.append(f)
    (dest / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return written + [dest / "index.json"]
