"""The report types and title forms added for arm64, x86-64 and the kernel's
debugging tools. The lines follow the kernel's format strings (file named in
each case). lockdep, kmemleak and x86-64 cannot be produced by this
project's kernels (LKDTM has no trigger for the first two, there is no x86
QEMU here), so they are checked here line by line; KASAN, KFENCE, UBSAN and
FORTIFY also have golden logs from real runs of kernels/sanitizers.yaml
(tests/data/console/lkdtm-*-riscv64-sanitizers.log), and the default
kernels' golden logs cover the rest (lkdtm-*-arm64.log, -riscv64.log)."""
from __future__ import annotations

import pytest

from harness.parsers import klog, reports


def _one(log: str) -> reports.Report:
    found = [r for r in reports.parse(log) if r.type not in (reports.LKDTM, reports.PANIC)]
    assert len(found) == 1, [(r.type, r.title) for r in found]
    return found[0]


def test_x86_64_guilty_frame_and_unreliable_frames() -> None:
    # arch/x86/mm/fault.c show_fault_oops + arch/x86/kernel/dumpstack.c
    log = "\n".join([
        "[   12.000001][  T101] BUG: kernel NULL pointer dereference, address: 0000000000000000",
        "[   12.000002][  T101] #PF: supervisor write access in kernel mode",
        "[   12.000003][  T101] Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI",
        "[   12.000004][  T101] CPU: 1 UID: 0 PID: 101 Comm: sh Not tainted 6.12.0 #1",
        "[   12.000005][  T101] RIP: 0010:lkdtm_WRITE_KERN+0x12/0x30",
        "[   12.000006][  T101] RSP: 0018:ffffc90000013d48 EFLAGS: 00010246",
        "[   12.000007][  T101] RAX: 0000000000000000 RBX: ffff888003a1b000 RCX: 0000000000000000",
        "[   12.000008][  T101] Call Trace:",
        "[   12.000009][  T101]  <TASK>",
        "[   12.000010][  T101]  ? __die+0x1e/0x60",
        "[   12.000011][  T101]  ? page_fault_oops+0x17a/0x4a0",
        "[   12.000012][  T101]  lkdtm_do_action+0x1c/0x30",
        "[   12.000013][  T101]  direct_entry+0xa1/0xf0",
        "[   12.000014][  T101]  </TASK>",
        "[   12.000015][  T101] ---[ end trace 0000000000000000 ]---",
    ])
    r = _one(log)
    assert r.type == reports.OOPS
    assert r.title == "BUG: unable to handle kernel NULL pointer dereference in lkdtm_WRITE_KERN"
    assert r.guilty_frame == "lkdtm_WRITE_KERN+0x12/0x30" and r.cpu == 1
    assert klog.parse_frame(" ? __die+0x1e/0x60").reliable is False
    assert klog.symbolic_register("RIP: 0010:lkdtm_WRITE_KERN+0x12/0x30") == (klog.PC, "lkdtm_WRITE_KERN+0x12/0x30")
    assert klog.parse_registers("RAX: 0000000000000000 RBX: ffff888003a1b000 RCX: 0000000000000000") == {
        "rax": "0000000000000000", "rbx": "ffff888003a1b000", "rcx": "0000000000000000"}


def test_arm64_register_dump_and_lower_case_call_trace() -> None:
    # arch/arm64/kernel/process.c __show_regs, stacktrace.c dump_backtrace
    assert klog.symbolic_register("pc : lkdtm_HARDLOCKUP+0x10/0x20") == (klog.PC, "lkdtm_HARDLOCKUP+0x10/0x20")
    assert klog.symbolic_register("lr : lkdtm_do_action+0x1c/0x30") == (klog.RA, "lkdtm_do_action+0x1c/0x30")
    assert klog.parse_registers("x29: ffff80008003bd40 x28: ffff0000020e8000 x27: 0000000000000000") == {
        "x29": "ffff80008003bd40", "x28": "ffff0000020e8000", "x27": "0000000000000000"}
    f = klog.parse_frame(" lkdtm_HARDLOCKUP+0x10/0x20")
    assert f is not None and (f.address, f.function, f.offset, f.size) == ("", "lkdtm_HARDLOCKUP", "0x10", "0x20")
    assert klog.parse_frame(" lkdtm_BUG+0x4/0x8 [lkdtm]").module == "lkdtm"
    for line in ("Call trace:", "pc : x+0x0/0x4", "sp : ffff80008003bd40", "pstate: 60400009 (nZCv)"):
        assert klog.is_stack_line(line), line
    # plain words and prose are not frames
    for line in ("lkdtm_HARDLOCKUP", "Performing direct entry BUG", "a+0x1/0x2 b", "x+0x1"):
        assert klog.parse_frame(line) is None, line


@pytest.mark.parametrize("lines,type_,title", [
    (["BUG: KASAN: slab-out-of-bounds in lkdtm_SLAB_LINEAR_OVERFLOW+0x4c/0x90",
      "Write of size 1 at addr ffff000003d2a400 by task sh/101", "Call trace:",
      " kasan_report+0x94/0xd8", " lkdtm_SLAB_LINEAR_OVERFLOW+0x4c/0x90"],
     reports.KASAN, "KASAN: slab-out-of-bounds in lkdtm_SLAB_LINEAR_OVERFLOW"),
    (["BUG: KFENCE: out-of-bounds read in lkdtm_READ_AFTER_FREE+0x60/0xa0",
      "Out-of-bounds read at 0x00000000c0a8f2b1 (32B right of kfence-#3):",
      " lkdtm_READ_AFTER_FREE+0x60/0xa0"],
     reports.KFENCE, "KFENCE: out-of-bounds read in lkdtm_READ_AFTER_FREE"),
    (["UBSAN: array-index-out-of-bounds in drivers/misc/lkdtm/bugs.c:390:16",
      "index 8 is out of range for type 'char [8]'", "Call trace:",
      " __ubsan_handle_out_of_bounds+0x84/0xb0", " lkdtm_ARRAY_BOUNDS+0x1b4/0x1d8"],
     reports.UBSAN, "UBSAN: array-index-out-of-bounds in lkdtm_ARRAY_BOUNDS"),
    (["WARNING: possible circular locking dependency detected", "Call trace:",
      " print_circular_bug+0x1/0x2", " check_noncircular+0x1/0x2", " lock_acquire+0x1/0x2",
      " my_lock_ab+0x10/0x40"],
     reports.LOCKDEP, "possible deadlock in my_lock_ab"),
    (["WARNING: inconsistent lock state", "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.",
      "Call trace:", " mark_lock+0x1/0x2", " irq_handler_x+0x10/0x40"],
     reports.LOCKDEP, "inconsistent lock state in irq_handler_x"),
    (["BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
      "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 101, name: sh", "Call trace:",
      " __might_resched+0x1/0x2", " mutex_lock+0x1/0x2", " lkdtm_SLEEP_ATOMIC+0x10/0x40"],
     reports.SLEEP_IN_ATOMIC, "BUG: sleeping function called from invalid context in mutex_lock"),
    (["unreferenced object 0xffff000003d2a400 (size 32):",
      '  comm "sh", pid 101, jiffies 4294893234', "  hex dump (first 32 bytes):",
      "    6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  kkkkkkkkkkkkkkkk",
      "  backtrace (crc 9b0bd6e5):", "    [<ffff8000802c5c10>] kmemleak_alloc+0x1/0x2",
      "    [<ffff8000802c5c14>] __kmalloc_noprof+0x1/0x2", "    [<ffff8000802c5c18>] leaky_init+0x10/0x40"],
     reports.KMEMLEAK, "memory leak in leaky_init"),
    (["Oops: general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] PREEMPT SMP KASAN NOPTI",
      "CPU: 0 UID: 0 PID: 101 Comm: sh Not tainted 6.12.0 #1", "RIP: 0010:list_del_entry+0x20/0x90",
      "Call Trace:", " <TASK>", " ? die_addr+0x3c/0xa0", " lkdtm_CORRUPT_LIST_DEL+0x1/0x2", " </TASK>"],
     reports.GPF, "general protection fault in list_del_entry"),
])
def test_debug_tool_reports(lines: list[str], type_: str, title: str) -> None:
    log = "\n".join(f"[   20.{i:06d}][  T101] {ln}" for i, ln in enumerate(lines)) + "\n"
    r = _one(log)
    assert (r.type, r.title) == (type_, title)
