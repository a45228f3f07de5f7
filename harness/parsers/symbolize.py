"""Addresses to symbols: func+off/size from a System.map (a bisect over the
sorted text symbols, the way kallsyms answers %pS), and file:line from
vmlinux through one long-lived `addr2line -f -e vmlinux` process.

Missing files, missing tools, a vmlinux without debug info, or an
addr2line that dies all degrade to "no answer" (None), never to an error."""
from __future__ import annotations

import bisect
import functools
import os
import select
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.core.children import die_with_harness

# Text symbols, as kallsyms keeps them by default (t/T, weak w/W).
_TEXT_TYPES = frozenset("tTwW")
# Names the assembler and linker add that kallsyms leaves out.
_IGNORED_PREFIXES = ("$", ".L", "__crc_", "__efistub_", "__kstrtab", "__ksymtab")


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int

    def format(self, address: int) -> str:
        """The kernel's %pS: 'name+0xoff/0xsize'."""
        return f"{self.name}+{address - self.address:#x}/{self.size:#x}"


def _linker_provided(name: str) -> bool:
    """may_be_linker_script_provide_symbol() of scripts/kallsyms.c."""
    if len(name) < 8 or not name.startswith("__"):
        return False
    return (name.startswith(("__start_", "__stop_", "__end_"))
            or name.endswith(("_start", "_end")))


class SystemMap:
    """Sorted text symbols; lookup(addr) is O(log n)."""

    def __init__(self, symbols: list[tuple[int, str, str]]) -> None:
        # One name per address, chosen as scripts/kallsyms.c sorts aliases
        # and kallsyms_lookup() takes the first: strong before weak, then
        # not a linker-provided __start_/__end_ marker, then the fewest
        # leading underscores, then file order.
        best: dict[int, tuple[tuple[int, int, int, int], str, str]] = {}
        for seq, (addr, kind, name) in enumerate(symbols):
            key = (kind in "wW", _linker_provided(name), len(name) - len(name.lstrip("_")), seq)
            old = best.get(addr)
            if old is None or key < old[0]:
                best[addr] = (key, kind, name)
        self._addrs = sorted(best)
        self._names = [best[a][2] for a in self._addrs]
        self._text = [best[a][1] in _TEXT_TYPES for a in self._addrs]

    @classmethod
    def parse(cls, text: str) -> "SystemMap":
        """'ffffffff80007f44 T arch_kgdb_breakpoint' lines; others ignored."""
        symbols: list[tuple[int, str, str]] = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 3 or len(parts[1]) != 1 or len(parts[0]) > 16:
                continue
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            name = parts[2]
            # kallsyms drops undefined, debugging and absolute symbols.
            if name.startswith(_IGNORED_PREFIXES) or parts[1] in "uNnaA":
                continue
            # Non-text symbols still end the text symbol before them.
            symbols.append((addr, parts[1] if parts[1] in _TEXT_TYPES else "?", name))
        return cls(symbols)

    @classmethod
    def load(cls, path: Path | str | None) -> "SystemMap | None":
        """The map at path, read once per process for each version of the
        file: a run needs it for its steps, its kernel reports and its
        observations, and a matrix boots one kernel many times (about 70 ms
        a read for the default kernel's 15,000 text symbols)."""
        if path is None:
            return None
        try:
            st = Path(path).stat()
            return _load(str(path), st.st_size, st.st_mtime_ns)
        except OSError:
            return None

    def __len__(self) -> int:
        return sum(self._text)

    def lookup(self, address: int | str) -> Symbol | None:
        """The text symbol containing address, with its size up to the next
        symbol. None outside text or past the last symbol."""
        if isinstance(address, str):
            try:
                address = int(address, 16)
            except ValueError:
                return None
        i = bisect.bisect_right(self._addrs, address) - 1
        if i < 0 or i + 1 >= len(self._addrs) or not self._text[i]:
            return None
        return Symbol(self._names[i], self._addrs[i], self._addrs[i + 1] - self._addrs[i])

    def format(self, address: int | str) -> str | None:
        sym = self.lookup(address)
        if sym is None:
            return None
        return sym.format(int(address, 16) if isinstance(address, str) else address)


def has_debug_info(vmlinux: Path | str) -> bool:
    """Whether the ELF file has a .debug_info or .debug_line section
    (CONFIG_DEBUG_INFO_NONE kernels do not). Reads only the headers."""
    try:
        with open(vmlinux, "rb") as fh:
            ident = fh.read(64)
            if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2:
                return False
            end = "<" if ident[5] == 1 else ">"
            shoff, = struct.unpack(end + "Q", ident[40:48])
            shentsize, shnum, shstrndx = struct.unpack(end + "HHH", ident[58:64])
            if shentsize < 64 or shnum == 0 or shnum > 65535 or shstrndx >= shnum:
                return False
            fh.seek(shoff)
            table = fh.read(shentsize * shnum)
            if len(table) < shentsize * shnum:
                return False

            def section(i: int) -> tuple[int, int, int]:
                raw = table[i * shentsize:i * shentsize + 64]
                name, = struct.unpack(end + "I", raw[0:4])
                offset, size = struct.unpack(end + "QQ", raw[24:40])
                return name, offset, size

            _, str_off, str_size = section(shstrndx)
            if str_size > 1 << 24:
                return False
            fh.seek(str_off)
            strtab = fh.read(str_size)
            for i in range(shnum):
                name_off = section(i)[0]
                name = strtab[name_off:strtab.find(b"\0", name_off)]
                if name in (b".debug_info", b".debug_line"):
                    return True
    except (OSError, struct.error, ValueError):
        return False
    return False


class Addr2Line:
    """One `addr2line -f -e vmlinux` process answering address after
    address on its stdin, with a cache. Use as a context manager or call
    close(). file_line() returns None when anything is missing."""

    TIMEOUT = 10.0

    def __init__(self, vmlinux: Path | str | None, tool: str = "riscv64-linux-gnu-addr2line"
                 ) -> None:
        self.vmlinux = Path(vmlinux) if vmlinux is not None else None
        self.tool = shutil.which(tool) or (tool if os.path.isabs(tool) and os.access(tool, os.X_OK)
                                           else None)
        self.cache: dict[int, tuple[str, str] | None] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self.usable = (self.tool is not None and self.vmlinux is not None
                       and self.vmlinux.is_file() and has_debug_info(self.vmlinux))
        self.why_not = ("" if self.usable else
                        "no addr2line" if self.tool is None else
                        "no vmlinux" if self.vmlinux is None or not self.vmlinux.is_file() else
                        "vmlinux has no debug info")

    def __enter__(self) -> "Addr2Line":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> bool:
        if self.proc is not None and self.proc.poll() is None:
            return True
        if not self.usable:
            return False
        try:
            self.proc = subprocess.Popen([str(self.tool), "-f", "-e", str(self.vmlinux)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, bufsize=0,
                                         preexec_fn=die_with_harness())
            self._buf = b""
        except OSError as exc:
            self.usable, self.why_not = False, f"cannot start addr2line: {exc.strerror}"
            return False
        return True

    def _read_lines(self, count: int) -> list[bytes] | None:
        """count answer lines; None when addr2line is silent for TIMEOUT s.
        Reads the pipe unbuffered: a buffered reader would hide a second
        line already read from select()."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while self._buf.count(b"\n") < count:
            ready, _, _ = select.select([fd], [], [], self.TIMEOUT)
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                return None
            self._buf += chunk
        lines = self._buf.split(b"\n")
        self._buf = b"\n".join(lines[count:])
        return lines[:count]

    def lookup(self, address: int) -> tuple[str, str] | None:
        """(function, 'file:line') or None."""
        if address in self.cache:
            return self.cache[address]
        result: tuple[str, str] | None = None
        if self._start():
            assert self.proc is not None and self.proc.stdin is not None
            try:
                self.proc.stdin.write(f"{address:#x}\n".encode())
                self.proc.stdin.flush()
                answer = self._read_lines(2)
            except (BrokenPipeError, OSError, ValueError):
                answer = None
            if answer is None:
                # Dead or stuck: do not try again for every address.
                self.close()
                self.usable, self.why_not = False, "addr2line stopped answering"
            else:
                f = answer[0].decode(errors="replace").strip()
                w = answer[1].decode(errors="replace").strip()
                if not w.startswith("??"):
                    result = (f, w.split(" (discriminator")[0])
        self.cache[address] = result
        return result

    def file_line(self, address: int | str) -> str | None:
        if isinstance(address, str):
            try:
                address = int(address, 16)
            except ValueError:
                return None
        hit = self.lookup(address)
        return hit[1] if hit else None

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout:
                proc.stdout.close()


class Symbolizer:
    """System.map and addr2line together: symbolize('ffffffff80007f44')."""

    def __init__(self, system_map: Path | str | None = None, vmlinux: Path | str | None = None,
                 addr2line: str = "riscv64-linux-gnu-addr2line") -> None:
        self.map = SystemMap.load(system_map)
        self.lines = Addr2Line(vmlinux, addr2line)

    def __enter__(self) -> "Symbolizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def symbolize(self, address: int | str) -> dict[str, str | None]:
        try:
            value = int(address, 16) if isinstance(address, str) else int(address)
        except ValueError:
            return {"address": str(address), "symbol": None, "file_line": None}
        return {"address": f"{value:016x}",
                "symbol": self.map.format(value) if self.map else None,
                "file_line": self.lines.file_line(value)}

    def close(self) -> None:
        self.lines.close()


@functools.lru_cache(maxsize=16)
def _load(path: str, size: int, mtime_ns: int) -> SystemMap:
    return SystemMap.parse(Path(path).read_text(encoding="utf-8", errors="replace"))
