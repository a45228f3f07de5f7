"""--email: the review as a reply to the series' cover letter (or to patch
1 when there is none): In-Reply-To and References from the series'
message-ids, a "Re:" subject, review.md as the body, and the tags: a
Tested-by only when every check is decided and none is worse (exit 0);
Reported-by and Closes, as the 0-day bot writes them, when one is worse;
neither while something is undecided (exit 3)."""
from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage

from harness.outputs import review_md
from harness.review.record import IDENTITY, Review


def subject(rv: Review) -> str:
    s = rv.series
    ver = f" v{s.version}" if s.version > 1 else ""
    if s.cover_msgid:
        return f"Re: [PATCH{ver} 0/{rv.n}] {s.subject}"
    p = s.patches[0]
    return f"Re: [PATCH{ver}{f' 1/{rv.n}' if rv.n > 1 else ''}] {p.subject}"


def tags(rv: Review) -> list[str]:
    if rv.exit_code == 0:
        return [f"Tested-by: {IDENTITY}"]
    if not rv.regressed:
        return []
    url = (rv.out / "review.md").resolve().as_uri()
    return ["If you fix this in a new version of the series, kindly add:",
            f"| Reported-by: {IDENTITY}", f"| Closes: {url}"]


def render(rv: Review) -> bytes:
    s = rv.series
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = IDENTITY
    msg["To"] = s.author
    msg["Subject"] = subject(rv)
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-Id"] = email.utils.make_msgid("rvharness-review", "localhost")
    if s.thread_msgid:
        msg["In-Reply-To"] = f"<{s.thread_msgid}>"
        msg["References"] = " ".join(f"<{m}>" for m in (*s.references, s.thread_msgid))
    body = review_md.render(rv) + "\n" + "\n".join(tags(rv)) + "\n"
    # Plain 8-bit text, as mail to a kernel list is (no quoted-printable).
    msg.set_content(body, cte="8bit")
    return msg.as_bytes()
