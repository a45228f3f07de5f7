"""Judging one run: what a run observed, the expectations' checks, and the
model's claims compared with the kernel."""
