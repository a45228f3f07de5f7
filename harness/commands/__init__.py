"""One module per subcommand whose work is more than a call into a lower
layer: what cli.py dispatches to."""
