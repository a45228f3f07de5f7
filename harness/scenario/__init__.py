"""Scenarios: the schema, loading and limits of scenario files, which
scenarios run where (selection, skip_arch) and what is validated before
anything is built."""
