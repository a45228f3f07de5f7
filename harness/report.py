"""Kept for importers of the old module: the output formats live in
harness/outputs/."""
from .outputs.results import write_summary  # noqa: F401
from .outputs.terminal import print_result, scenario_line, summary_line  # noqa: F401
