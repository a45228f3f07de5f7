"""python -m harness: the same as the rvharness command."""
from harness.cli import main

raise SystemExit(main())
