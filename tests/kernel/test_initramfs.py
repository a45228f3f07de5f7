"""The harness writes the newc cpio itself; check it with the real cpio tool."""
import stat
import subprocess
from pathlib import Path

from harness.kernel.initramfs import Entry, newc


def test_newc_lists_with_cpio(tmp_path: Path) -> None:
    blob = newc([Entry("bin", stat.S_IFDIR | 0o755), Entry("bin/x", stat.S_IFREG | 0o755, b"hello\n"),
                 Entry("bin/sh", stat.S_IFLNK | 0o777, b"x"),
                 Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))])
    assert len(blob) % 512 == 0
    archive = tmp_path / "a.cpio"
    archive.write_bytes(blob)
    listing = subprocess.run(["cpio", "-itv"], input=blob, capture_output=True, check=True).stdout.decode()
    names = [line.split()[-1] if "->" not in line else line.split()[-3] for line in listing.splitlines()]
    assert names == ["bin", "bin/x", "bin/sh", "dev/console"]
    assert "5,   1" in listing or "5, 1" in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "bin/x"], input=blob, cwd=out, check=True)
    assert (out / "bin" / "x").read_bytes() == b"hello\n"
