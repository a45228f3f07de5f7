"""The bottom layer: errors, paths and names, the arch records, host commands
and the processes that die with the harness, the YAML reader. Imports nothing
else of harness."""
