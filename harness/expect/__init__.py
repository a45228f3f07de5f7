"""Judging one run: what a run observed, the expectations' checks, and the
model's claims compared with the kernel. Expectation kinds, one module each
(<kind>_check.py): schema, validation, expected text and evaluation
(kind.ExpectationKind); kinds_registry.EXPECTATION_KINDS is the table the
loader and checks.py dispatch through."""
