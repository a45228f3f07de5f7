"""rvharness review: a patch series tested against its base, A/B with
repeats, each change attributed to a patch (docs/review.md).

series.py   the series from an mbox, a directory or a git range (b4)
kernels.py  building the base, the tip and the prefixes base+1..k
ab.py       the A/B rounds and the decision of every check (SAME/DIFFERENT/UNKNOWN)
attribute.py  which patch brings each change (a search over prefixes)
command.py  the command: input checks, the runs, the outputs, the exit code
The writers are under harness/outputs/ (review_md, review_mail,
review_junit, patchwork)."""
