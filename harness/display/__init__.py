"""Live terminal output: the progress lines, the VM slots, --follow and the
final summary."""
