"""Measure what the CPU stop IPI (or its absence) leaves behind, on the
default kernel: LKDTM PANIC (kdb left with go), `reboot -f`, `poweroff -f`,
`halt -f`. Boots one VM, records the console, the QMP events, /proc/interrupts
before, and vCPU probes after the event while QEMU still runs (panic:
-action panic=none keeps it running). Used for docs/ipi-types.md.

    python bench/ipi_types/stop_probe.py MODE --out DIR [--cpu 1] [--load 3] [--reboot]
MODE: panic | reboot | poweroff | halt | sysrq-c
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

# The harness of this checkout, not whatever `pip install -e` points at.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.guest import faults, vcpu_probe as vcpus
from harness.kernel import initramfs, kbuild
from harness.core.arch import RISCV64
from harness.guest.console import KDB_GO_AGAIN, KDB_PROMPT
from harness.core.errors import ConsoleTimeout, QemuExited
from harness.guest.machine import Machine, MachineSpec
from harness.parsers.symbolize import SystemMap
from harness.guest.qmp import QmpClient
from harness.guest.qmp_types import QmpError, QmpTimeout
from harness.kernel.recipe import load_recipe

MODES = ("panic", "reboot", "poweroff", "halt", "sysrq-c")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--cpu", type=int, default=1, help="CPU the trigger runs on")
    ap.add_argument("--load", type=int, action="append", default=[], help="busy loop on this CPU first")
    ap.add_argument("--hardlockup", type=int, help="LKDTM HARDLOCKUP on this CPU first")
    ap.add_argument("--reboot", action="store_true", help="no -no-reboot")
    ap.add_argument("--cpus", type=int, default=4)
    ap.add_argument("--cmdline", action="append", default=[])
    args = ap.parse_args(argv)

    kernel = kbuild.build(load_recipe(Path("kernels/default.yaml")))
    initrd = initramfs.build(RISCV64)
    smap = SystemMap.load(kernel.system_map)
    spec = MachineSpec(kernel.arch, kernel.image, initrd, cpus=args.cpus, no_reboot=not args.reboot,
                       cmdline=tuple(args.cmdline))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"mode": args.mode, "cpu": args.cpu, "load": args.load, "reboot": args.reboot}
    with Machine(spec, out, boot_timeout=60) as m:
        qmp = QmpClient.for_machine(m).connect()
        try:
            m.boot()
            con = m.console
            assert con is not None
            harts = faults.read_harts(con, 20)
            result["harts"] = harts
            for c in args.load:
                con.run(f"taskset -c {c} sh -c 'while :; do :; done' >/dev/null 2>&1 &")
            if args.hardlockup is not None:
                others = ",".join(str(c) for c in range(args.cpus) if c != args.hardlockup)
                con.run(f"taskset -p -c {others} $$ >/dev/null; taskset -c {args.hardlockup} sh -c "
                        "'echo HARDLOCKUP > /sys/kernel/debug/provoke-crash/DIRECT' &")
            time.sleep(0.3)
            result["interrupts_before"] = con.run(["cat", "/proc/interrupts"]).output
            result["probe_before"] = vcpus.probe(qmp, "before", smap, kernel.arch, harts).to_json()
            mark = qmp.mark()
            trigger_at = con.position
            con.allowed_crashes |= {"panic", "oops"}
            t0 = time.monotonic()
            pin = ["taskset", "-c", str(args.cpu)]
            if args.mode == "panic":
                con.begin([*pin, "sh", "-c", "echo PANIC > /sys/kernel/debug/provoke-crash/DIRECT"])
            elif args.mode == "sysrq-c":
                con.begin([*pin, "sh", "-c", "echo c > /proc/sysrq-trigger"])
            else:
                con.begin([*pin, args.mode, "-f"])
            gos = 0
            exited = False
            deadline = t0 + 30
            while time.monotonic() < deadline:
                names = [e.name for e in qmp.events[mark:]]
                if "GUEST_PANICKED" in names or "SHUTDOWN" in names:
                    break
                if args.reboot and "RESET" in names:
                    break
                try:
                    mt = con.expect([KDB_PROMPT, KDB_GO_AGAIN], 0.2, "kdb")
                    if mt.re.pattern == KDB_PROMPT:
                        con.send("go\r")
                        gos += 1
                except ConsoleTimeout:
                    continue
                except QemuExited:
                    exited = True
                    break
            result["kdb_go"] = gos
            result["event_after_s"] = round(time.monotonic() - t0, 3)
            try:
                con.settle(quiet=1.0, limit=5.0)
            except (ValueError, OSError):
                exited = True          # pexpect: QEMU closed the console
            time.sleep(1.0)
            result["qemu_alive"] = m.child is not None and m.child.isalive()
            if result["qemu_alive"] and not exited:
                try:
                    st = qmp.status()
                    result["status"] = {"status": st.status, "running": st.running}
                except QmpError as exc:
                    result["status"] = f"error {exc}"
                try:
                    result["probe_after"] = vcpus.probe(qmp, "after", smap, kernel.arch, harts,
                                                        rounds=3, gap=0.3).to_json()
                    time.sleep(2.0)
                    result["probe_later"] = vcpus.probe(qmp, "later", smap, kernel.arch, harts,
                                                        rounds=3, gap=0.3).to_json()
                except (QmpError, QemuExited) as exc:
                    result["probe_after"] = f"error {exc}"
                if args.reboot and args.mode == "reboot":
                    try:
                        con.wait_ready(60)
                        result["rebooted"] = True
                    except Exception as exc:  # noqa: BLE001
                        result["rebooted"] = f"no: {exc}"
            result["events"] = [json.loads(e.to_json()) for e in qmp.events[mark:]]
            result["console_after"] = con.text(trigger_at)
        finally:
            qmp.close()
    result["exit_status"] = m.exit_status
    (out / "stop-probe.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({k: v for k, v in result.items()
                      if k not in ("console_after", "interrupts_before", "probe_before")},
                     indent=1, default=str)[:6000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
