"""A patch series from an mbox (git format-patch --stdout, b4 am output, a
whole thread with replies and several versions), a directory of .patch files
or a git range BASE..TIP, through b4's LoreMailbox: it picks the version,
orders [PATCH n/m], sets the cover letter aside, collects trailers from
replies and reads the base-commit: footer. Nothing here parses mail itself.

Several versions in one mbox: the newest is taken unless --version asks for
another, and the choice is said (Series.note)."""
from __future__ import annotations

import dataclasses
import email.parser
import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from harness.core import hostcmd
from harness.core.errors import InputError

# A diff starts at the first of these lines after the commit message.
_DIFF_START = re.compile(r"^(diff --git |--- a/|--- /dev/null|Index: )", re.M)
# git format-patch's signature ("-- \n2.39.5") ends a mail, not the diff;
# so do its --base footers when there is no cover letter to hold them.
_SIGNATURE = re.compile(r"\n-- \n[^\n]*\n*\Z")
_FOOTERS = re.compile(r"\n(?:\n(?:base-commit|prerequisite-patch-id|change-id): [^\n]*)+\n*\Z")


def _b4():
    import b4  # heavy: b4 (and its git config reads) only for review
    # No network: trailers come from the mbox only (no code-review lookups,
    # no DKIM key fetches), and b4's log lines stay out of the output.
    b4.can_network = False
    logging.getLogger("b4").setLevel(logging.CRITICAL)
    return b4


@dataclass(frozen=True)
class Trailer:
    name: str
    value: str
    by: str              # who sent it (the reply's From)

    def line(self) -> str:
        return f"{self.name}: {self.value}"


@dataclass(frozen=True)
class Patch:
    number: int          # 1-based, [PATCH number/total]
    total: int
    subject: str         # without the [PATCH ...] prefix
    author: str
    msgid: str
    diff: str            # the diff alone: what the build applies
    trailers: tuple[Trailer, ...] = ()   # collected from replies

    @property
    def label(self) -> str:
        return f"{self.number}/{self.total} {self.subject}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.subject).strip("-")[:52] or "patch"

    def file_name(self) -> str:
        return f"{self.number:04d}-{self.slug}.patch"


@dataclass(frozen=True)
class Series:
    source: str                  # what the user gave (path or range)
    subject: str                 # the cover letter's, else patch 1's
    version: int
    author: str
    patches: tuple[Patch, ...]
    cover_msgid: str = ""        # the thread's root: cover letter, else patch 1
    msgids: tuple[str, ...] = ()   # every message of the series
    references: tuple[str, ...] = ()   # the thread root's own References (an earlier version's thread)
    base_commit: str = ""        # from the base-commit: footer
    cover_trailers: tuple[Trailer, ...] = ()
    note: str = ""               # the version choice, said when there was one
    versions: tuple[int, ...] = ()

    @property
    def thread_msgid(self) -> str:
        return self.cover_msgid or (self.patches[0].msgid if self.patches else "")

    def trailers(self) -> list[tuple[str, Trailer]]:
        """(where, trailer) for every collected trailer: 'cover' or 'n/m'."""
        out = [("cover", t) for t in self.cover_trailers]
        for p in self.patches:
            out += [(f"{p.number}/{p.total}", t) for t in p.trailers]
        return out


def _diff_of(body: str) -> str:
    m = _DIFF_START.search(body)
    if m is None:
        return ""
    diff = _FOOTERS.sub("\n", _SIGNATURE.sub("\n", body[m.start():]))
    return diff if diff.endswith("\n") else diff + "\n"


def _trailers(lmsg) -> tuple[Trailer, ...]:
    out = []
    for t in lmsg.followup_trailers:
        by = t.lmsg.fromname if getattr(t, "lmsg", None) is not None else ""
        tr = Trailer(t.name, t.value, by)
        if tr not in out:
            out.append(tr)
    return tuple(out)


def _messages_from_mbox(path: Path) -> list[EmailMessage]:
    b4 = _b4()
    return b4.mailsplit_bytes(path.read_bytes())


def _messages_from_dir(path: Path) -> list[EmailMessage]:
    """One message per .patch file, in file-name order (as `git am dir/*.patch`).
    A file without a Message-Id (a plain git format-patch file has one; a
    hand-made one may not) gets one named after the file, which b4 needs."""
    b4 = _b4()
    files = sorted(p for p in path.iterdir() if p.suffix == ".patch" and p.is_file())
    if not files:
        raise InputError(path, "no .patch files in this directory")
    msgs = []
    for f in files:
        msg = email.parser.BytesParser(policy=b4.emlpolicy, _class=EmailMessage).parsebytes(f.read_bytes())
        if not msg.get("Message-Id"):
            msg["Message-Id"] = f"<{f.name}@rvharness.invalid>"
        if not msg.get("Subject"):
            raise InputError(f, "no Subject: header (expected a git format-patch file)")
        msgs.append(msg)
    return msgs


def load(path: Path, version: int | None = None) -> Series:
    """The series in an mbox file or a directory of .patch files."""
    if not path.exists():
        raise InputError(path, "no such file or directory")
    msgs = _messages_from_dir(path) if path.is_dir() else _messages_from_mbox(path)
    return from_messages(msgs, str(path), version, path)


def _refuse_unordered(b4, msgs: list[EmailMessage], path: Path | None) -> None:  # noqa: ANN001 - b4 module
    """Several different patches of one version without [PATCH n/m]
    numbers have no order. b4 takes an unnumbered patch from the same
    author with a later date for a new version of the one before it, so a
    directory of plain `git format-patch --no-numbered` files (commits a
    second apart or more, as a user's are) became "3 versions" and only the
    last patch was tested."""
    seen: dict[int, str] = {}
    for m in msgs:
        subj = b4.LoreSubject(str(m.get("Subject", "")))
        if not subj.patch or not subj.counters_inferred or subj.reply or subj.resend:
            continue
        first = seen.setdefault(subj.revision, subj.subject)
        if first != subj.subject:
            raise InputError(path, f"'{subj.full_subject}': no [PATCH n/m] number, and the mbox holds "
                                   "several patches, so their order is unknown")


def from_range(tree: Path, rng: str, dest: Path) -> tuple[Series, str]:
    """BASE..TIP in a git tree: the commits as git format-patch files under
    dest (the tree is only read), then the same path as a directory. Returns
    the series and BASE."""
    if ".." not in rng or rng.count("..") != 1 or "..." in rng:
        raise InputError(None, f"'{rng}': expected a git range BASE..TIP")
    base, tip = rng.split("..")
    if not base or not tip:
        raise InputError(None, f"'{rng}': expected a git range BASE..TIP")
    dest.mkdir(parents=True, exist_ok=True)
    count = hostcmd.run(["git", "-C", str(tree), "rev-list", "--count", rng], "git rev-list").strip()
    if count == "0":
        raise InputError(None, f"'{rng}' holds no commits")
    hostcmd.run(["git", "-C", str(tree), "format-patch", "-q", "--no-signature", "--thread",
                 f"--base={base}", "-o", str(dest), rng], "git format-patch")
    series = load(dest)
    return dataclasses.replace(series, source=rng), base


def from_messages(msgs: list[EmailMessage], source: str, version: int | None = None,
                  path: Path | None = None) -> Series:
    b4 = _b4()
    _refuse_unordered(b4, msgs, path)
    mbx = b4.LoreMailbox()
    for m in msgs:
        try:
            mbx.add_message(m)
        except ValueError as exc:      # a message b4 cannot use (no Message-ID)
            raise InputError(path, f"message '{m.get('Subject', '')}': {exc}") from None
    versions = tuple(sorted(mbx.series))
    if not versions:
        raise InputError(path, "no patches found (no message with a diff that is not a reply)")
    note = ""
    if version is not None:
        if version not in mbx.series:
            raise InputError(path, f"--version {version}: the mbox holds "
                                   f"{', '.join(f'v{v}' for v in versions)}")
        chosen = version
    else:
        chosen = mbx.get_latest_revision()
    if len(versions) > 1:
        how = "asked with --version" if version is not None else "the newest; --version N picks another"
        note = (f"the mbox holds {len(versions)} versions ({', '.join(f'v{v}' for v in versions)}); "
                f"v{chosen} tested ({how})")
    lser = mbx.get_series(chosen, codereview_trailers=False)
    if lser is None:
        raise InputError(path, f"v{chosen}: every patch is missing")
    present = [p for p in lser.patches[1:] if p is not None]
    if len(present) > 1 and any(p.counters_inferred for p in present):
        # b4 makes room for each unnumbered patch as it comes; the order is the
        # mbox's, which nothing vouches for.
        odd = next(p for p in present if p.counters_inferred)
        raise InputError(path, f"'{odd.full_subject}': no [PATCH n/m] number, and the mbox holds "
                               "several patches, so their order is unknown")
    missing = [i for i, p in enumerate(lser.patches[1:], start=1) if p is None]
    total = lser.expected
    if missing:
        raise InputError(path, f"v{chosen} '{lser.subject}': patch "
                               f"{', '.join(f'{i}/{total}' for i in missing)} missing")
    patches = []
    for i, lm in enumerate(present, start=1):
        diff = _diff_of(lm.body)
        if not diff:
            raise InputError(path, f"'{lm.full_subject}': no diff in the message")
        patches.append(Patch(i, total, lm.subject, f"{lm.fromname} <{lm.fromemail}>", lm.msgid, diff,
                             _trailers(lm)))
    cover = lser.patches[0] if lser.has_cover else None
    if cover is not None and not lser.base_commit:
        # A cover sent in reply to the previous version (git send-email
        # --in-reply-to) whose base-commit: footer looks like a trailer is
        # taken by b4 for a reply and found again by its thread position,
        # without add_patch, which reads the footers: give it to add_patch.
        lser.add_patch(cover)
    msgids = tuple(([cover.msgid] if cover else []) + [p.msgid for p in patches])
    root = cover or present[0]
    return Series(source, lser.subject or patches[0].subject, chosen,
                  f"{lser.fromname} <{lser.fromemail}>", tuple(patches),
                  cover.msgid if cover else "", msgids, tuple(root.references), lser.base_commit or "",
                  _trailers(cover) if cover else (), note, versions)


def write_patches(series: Series, dest: Path) -> list[Path]:
    """Each patch's diff as a file the build applies: the diff alone, so the
    kernel cache key does not change with mail headers, message-ids or
    trailers (the same diffs on the same base are built once)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in series.patches:
        f = dest / p.file_name()
        f.write_text(p.diff)
        out.append(f)
    return out
