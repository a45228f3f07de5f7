"""The pure functions that turn counts of runs into verdicts: a bisect
step's (bisect_step.py) and a check's change between two kernels
(ab_counts.py)."""
