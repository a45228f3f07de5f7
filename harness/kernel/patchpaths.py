"""The file names a patch touches, checked before anything is recorded or
written: every name a header gives must stay inside the kernel tree.

GNU patch reads file names from `--- `/`+++ `/`*** ` headers, from git's
`diff --git`, `rename from/to` and `copy from/to` lines and from `Index:`
lines, wherever they appear outside a hunk (a mail's description included).
The build records the -p1 names of the `---`/`+++` headers to undo them on the
next build (kbuild._work_tree), so a name such as `../../victim.txt` would make
it delete and overwrite a file outside the tree. Such a patch is refused with
the patch file, its line and the name, before the build looks at it.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import InputError

# Header lines that name a file, and where the name starts.
_HEADERS = ("--- ", "+++ ", "*** ", "Index: ", "rename from ", "rename to ",
            "copy from ", "copy to ")
_GIT_DIFF = re.compile(r"^diff --git (\S+) (\S+)")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
# A git header making a symlink: GNU patch would create it, and a later hunk
# could then write through it to anywhere.
_SYMLINK_MODE = re.compile(r"^(?:new file|new) mode 120000\b")
_NULL = "/dev/null"


@dataclass(frozen=True)
class PatchFile:
    """One file name a header gives: the raw name and its line."""
    name: str
    line: int
    header: str


def _unquote(raw: str) -> str:
    """A git/GNU C-quoted name ("a/foo\\tbar") decoded; others up to the tab."""
    if raw.startswith('"'):
        end = 1
        while end < len(raw) and raw[end] != '"':
            end += 2 if raw[end] == "\\" else 1
        body = raw[1:end]
        return codecs.escape_decode(body.encode("latin-1", "backslashreplace"))[0].decode(
            "utf-8", "replace")
    return raw.split("\t")[0].rstrip()


def unsafe_reason(name: str) -> str | None:
    """Why a header's name could reach outside the tree, or None. GNU patch
    strips -p1 by slashes and may end a name at a space (a timestamp), so
    every slash- or blank-separated part is looked at."""
    if name == _NULL:
        return None
    if "\0" in name or any(ord(c) < 32 for c in name):
        return "a control character in the file name"
    if name.startswith("/"):
        return "an absolute path"
    if ".." in re.split(r"[/\s]+", name):
        return "a '..' component"
    return None


def header_names(patch: Path, text: str | None = None) -> list[PatchFile]:
    """Every file name the patch's headers give, with its 1-based line.
    Lines inside unified hunks are content, not headers, and are skipped."""
    if text is None:
        text = read(patch)
    out: list[PatchFile] = []
    old_left = new_left = 0
    for no, line in enumerate(text.split("\n"), start=1):
        if old_left > 0 or new_left > 0:
            # Inside a unified hunk: ' ' (or an empty line) both, '-' old, '+' new.
            tag = line[:1]
            if tag in (" ", ""):
                old_left, new_left = old_left - 1, new_left - 1
                continue
            if tag == "-":
                old_left -= 1
                continue
            if tag == "+":
                new_left -= 1
                continue
            if tag == "\\":      # "\ No newline at end of file"
                continue
            old_left = new_left = 0     # a short hunk: this line is outside it
        if m := _HUNK.match(line):
            old_left = int(m.group(1)) if m.group(1) is not None else 1
            new_left = int(m.group(2)) if m.group(2) is not None else 1
            continue
        if m := _GIT_DIFF.match(line):
            out += [PatchFile(_unquote(m.group(1)), no, "diff --git"),
                    PatchFile(_unquote(m.group(2)), no, "diff --git")]
            continue
        if _SYMLINK_MODE.match(line):
            out.append(PatchFile("", no, "symlink"))
            continue
        for h in _HEADERS:
            if line.startswith(h):
                out.append(PatchFile(_unquote(line[len(h):]), no, h.strip()))
                break
    return out


def read(patch: Path) -> str:
    try:
        return patch.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise InputError(patch, f"cannot read patch: {exc.strerror}") from None


def check(patch: Path) -> list[PatchFile]:
    """Refuse a patch whose headers name a file outside the tree (or make a
    symlink); return the header names otherwise."""
    names = header_names(patch)
    for pf in names:
        if pf.header == "symlink":
            raise InputError(patch, "the patch creates a symbolic link (mode 120000); "
                                    "patches may only change regular files", pf.line)
        reason = unsafe_reason(pf.name)
        if reason is not None:
            raise InputError(patch, f"'{pf.header}' names {pf.name!r}, {reason}: a patch may only "
                                    "name files inside the kernel tree", pf.line)
    return names


def targets(patch: Path) -> list[str]:
    """The tree-relative (-p1) files a patch's ---/+++ headers touch, after
    check(): what kbuild records so the next build can undo them."""
    files: list[str] = []
    for pf in check(patch):
        if pf.header in ("---", "+++") and pf.name != _NULL and "/" in pf.name:
            rel = pf.name.split("/", 1)[1]
            if rel and rel not in files:
                files.append(rel)
    return files


def inside(tree: Path, rel: str) -> bool:
    """True when tree/rel stays inside tree (a recorded name from an older
    state file is checked again before the build deletes it)."""
    if unsafe_reason(rel) is not None:
        return False
    return (tree / rel).resolve().is_relative_to(tree.resolve())
