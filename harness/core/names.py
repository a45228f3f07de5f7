"""Names that become directory names under a run's artifact directory
(scenario names, recipe names): plain file names only, so that no name can
reach outside OUT (`..`, `/`), hide (a leading dot) or collide after
sanitising (two names that differ only in characters a sanitiser replaces)."""
from __future__ import annotations

import re

# A letter or digit first (no '.', '..', '-x' that looks like an option),
# then letters, digits and . _ + -; at most 100 characters.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
RULE = "1-100 characters from A-Z a-z 0-9 . _ + -, starting with a letter or digit"


def problem(name: str) -> str | None:
    """Why name cannot be a directory name under OUT, or None."""
    if PLAIN_NAME.fullmatch(name):
        return None
    return f"{name!r} is not a plain file name ({RULE})"


def safe(name: str) -> str:
    """name as a directory name under OUT (kernel labels such as
    'default+series3' or 'default@1a2b3c4d5e6f' included)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
