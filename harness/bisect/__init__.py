"""rvharness bisect: the search over commits and the step judge."""
