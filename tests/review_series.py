"""Patch series for the review tests, made with `git format-patch
--cover-letter --thread` from real changes to the Debian 6.12 source: the
cached git history of scripts/kernel-history (only objects are added to that
cache repository: commits are made with plumbing in a private index, no
checkout or ref changes)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "kernels" / "patches"
IDENT = {"GIT_AUTHOR_NAME": "A. Developer", "GIT_AUTHOR_EMAIL": "dev@example.org",
         "GIT_COMMITTER_NAME": "A. Developer", "GIT_COMMITTER_EMAIL": "dev@example.org"}
REVERTS = [
    ('Revert "RISC-V: Enable IPI CPU Backtrace"', "revert-f15c21a3de1b.patch"),
    ('Revert "RISC-V: Implement kgdb_roundup_cpus() to enable future NMI Roundup"',
     "revert-983f12149942.patch"),
    ('Revert "RISC-V: Enable the IPI before workqueue_online_cpu()"', "revert-3908ba2e0b24.patch"),
]
FIX = ("riscv: kgdb: keep the compiled breakpoint 4 bytes long under RVC",
       "fix-riscv-kgdb-compiled-break-rvc.patch")


def history() -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "kernel-history")], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def git(repo: str, *args: str, env: dict | None = None, input_text: str | None = None) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True,
                          input=input_text, env={**os.environ, **IDENT, **(env or {})}).stdout.strip()


def blob(repo: str, parent: str, path: str) -> str:
    return subprocess.run(["git", "-C", repo, "cat-file", "blob", f"{parent}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def commit(repo: str, parent: str, subject: str, change: tuple[str, str], n: int) -> str:
    """One commit on parent: ("patch", file in kernels/patches) or
    ("append", (path, text)); fixed dates, so the same ids everywhere."""
    kind, arg = change
    with tempfile.TemporaryDirectory(prefix="rvh-review-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", parent, env=env)
        if kind == "patch":
            _apply_fuzzy(repo, parent, PATCHES / arg, env)
        else:
            path, text = arg
            obj = git(repo, "hash-object", "-w", "--stdin", input_text=blob(repo, parent, path) + text)
            git(repo, "update-index", "--cacheinfo", f"100644,{obj},{path}", env=env)
        tree = git(repo, "write-tree", env=env)
    date = f"@{1767300000 + 60 * n} +0000"
    body = f"{subject}\n\nMade for the rvharness review tests.\n\nSigned-off-by: A. Developer <dev@example.org>"
    return git(repo, "commit-tree", tree, "-p", parent, "-m", body,
               env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})


def _apply_fuzzy(repo: str, parent: str, patch: Path, env: dict) -> None:
    """The seed patches were made one by one against the source; two of the
    reverts touch neighbouring lines of arch/riscv/kernel/smp.c, so on top of
    each other only GNU patch with all context fuzzed (-F3) applies them;
    the result was read: only the reverted lines go."""
    files = [l.split()[1][2:] for l in patch.read_text().splitlines() if l.startswith("+++ ")]
    with tempfile.TemporaryDirectory(prefix="rvh-review-fuzz-") as tmp:
        for f in files:
            (Path(tmp) / f).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / f).write_text(blob(repo, parent, f))
        subprocess.run(["patch", "-p1", "-F3", "--batch", "--forward", "--no-backup-if-mismatch", "-d", tmp,
                        "-i", str(patch)], check=True, capture_output=True)
        for f in files:
            obj = git(repo, "hash-object", "-w", str(Path(tmp) / f))
            git(repo, "update-index", "--cacheinfo", f"100644,{obj},{f}", env=env)


def chain(repo: str, parent: str, items: list[tuple[str, tuple]], start: int = 0) -> list[str]:
    out = []
    for i, (subject, change) in enumerate(items):
        parent = commit(repo, parent, subject, change, start + i)
        out.append(parent)
    return out


def format_series(repo: str, base: str, tip: str, dest: Path, subject: str, blurb: str,
                  version: int | None = None, in_reply_to: str | None = None) -> list[Path]:
    """git format-patch --cover-letter --thread --base, the cover letter's
    placeholders filled in; the files in order (0000 is the cover)."""
    dest.mkdir(parents=True, exist_ok=True)
    argv = ["format-patch", "-q", "--cover-letter", "--thread", f"--base={base}", "-o", str(dest)]
    if version:
        argv.append(f"-v{version}")
    if in_reply_to:
        argv.append(f"--in-reply-to={in_reply_to}")
    git(repo, *argv, f"{base}..{tip}")
    files = sorted(dest.glob("*.patch"))
    cover = files[0]
    cover.write_text(cover.read_text().replace("*** SUBJECT HERE ***", subject)
                     .replace("*** BLURB HERE ***", blurb))
    return files


def mbox(files: list[Path], dest: Path) -> Path:
    """format-patch files start with git's 'From <sha> <date>' line: they concatenate to an mbox."""
    dest.write_text("".join(f.read_text() for f in files))
    return dest


def reply(to: Path, frm: str, text: str, msgid: str) -> str:
    """A reply mail (one mbox message) to the format-patch file `to`."""
    import email
    orig = email.message_from_string(to.read_text())
    subject = orig["Subject"].replace("\n", " ")
    refs = (orig.get("References", "") + " " + orig["Message-Id"]).strip()
    return (f"From rvharness-reply Mon Sep 17 00:00:00 2001\nFrom: {frm}\nSubject: Re: {subject}\n"
            f"Date: Fri, 2 Jan 2026 12:00:00 +0000\nMessage-Id: <{msgid}>\n"
            f"In-Reply-To: {orig['Message-Id']}\nReferences: {refs}\n\n{text}\n")


def msgid_of(path: Path) -> str:
    import email
    return email.message_from_string(path.read_text())["Message-Id"].strip("<>")


# ------------------------------------------------------------------ the series

def fixed_base(h: dict) -> str:
    """The Debian source with the kgdb RVC fix: the default kernel's source."""
    return commit(h["repo"], h["base"], FIX[0], ("patch", FIX[1]), 0)


def revert_series(h: dict, dest: Path) -> tuple[str, list[Path]]:
    base = fixed_base(h)
    tips = chain(h["repo"], base, [(s, ("patch", f)) for s, f in REVERTS], start=1)
    return base, format_series(h["repo"], base, tips[-1], dest, "riscv: revert three IPI changes",
                               "Three reverts, for the rvharness review tests.")


def fix_series(h: dict, dest: Path) -> tuple[str, list[Path]]:
    """The kgdb RVC fix on the Debian source without it."""
    tip = commit(h["repo"], h["base"], FIX[0], ("patch", FIX[1]), 10)
    return h["base"], format_series(h["repo"], h["base"], tip, dest, "riscv: kgdb: an RVC fix",
                                    "One fix, for the rvharness review tests.")


def doc_series(h: dict, dest: Path, version: int = 1, tag: str = "a") -> tuple[str, list[Path]]:
    base = fixed_base(h)
    items = [(f"Documentation: howto: review note {tag}{i}",
              ("append", ("Documentation/process/howto.rst", f".. rvharness review note {tag}{i}\n")))
             for i in (1, 2)]
    tips = chain(h["repo"], base, items, start=20 + 10 * version)
    return base, format_series(h["repo"], base, tips[-1], dest, "Documentation: two notes",
                               "Documentation only.", version=version)


def unappliable_series(h: dict, dest: Path) -> tuple[str, list[Path]]:
    """2/2 was made on a history commit (code1: a string appended to
    kernel/panic.c) the Debian source does not have: its hunk's context is
    that string, so it does not apply to the default kernel's source."""
    code1 = h["commits"]["code1"]
    tips = chain(h["repo"], code1, [
        ("Documentation: howto: review note u1",
         ("append", ("Documentation/process/submitting-patches.rst", ".. rvharness review note u1\n"))),
        ("panic: another harmless string",
         ("append", ("kernel/panic.c", "static const char rvh_review_u2[] __used = \"u2\";\n")))], start=60)
    return code1, format_series(h["repo"], code1, tips[-1], dest, "two changes, one on another base",
                                "The second patch does not apply to the Debian source.")


def thread_mbox(v1: list[Path], v2: list[Path], replies: list[str], dest: Path) -> Path:
    """One thread: v1, then v2 sent in reply to v1's cover (as `git send-email
    --in-reply-to` does), then the replies."""
    v1_cover = msgid_of(v1[0])
    for f in v2:
        head, body = f.read_text().split("\n\n", 1)
        if "In-Reply-To:" not in head:
            head += f"\nIn-Reply-To: <{v1_cover}>\nReferences: <{v1_cover}>"
        f.write_text(head + "\n\n" + body)
    dest.write_text("".join(f.read_text() for f in v1 + v2) + "".join(replies))
    return dest
