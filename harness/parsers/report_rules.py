"""The tables the kernel-report parser (reports.py) is driven by: the
report types, RULES (how a report starts and how its title is made, as
syzkaller's pkg/report makes them), SKIP and WEAK (which functions are
never, or only at last, to blame), and what a report's body lines look
like. The titles' stable parts come from normalise() and function_name()."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from harness.parsers import klog

PANIC = "panic"
OOPS = "oops"
KERNEL_BUG = "kernel-bug"
BUG = "bug"
WARNING = "warning"
SOFT_LOCKUP = "soft-lockup"
HARD_LOCKUP = "hard-lockup"
RCU_STALL = "rcu-stall"
HUNG_TASK = "hung-task"
CSD_LOCK = "csd-lock"
LKDTM = "lkdtm"
LKDTM_FAIL = "lkdtm-fail"
CPU_HOTPLUG = "cpu-hotplug"
# The report types of the kernel's debugging tools (titles as syzkaller's
# pkg/report makes them, so a title can be matched against its reports).
KASAN = "kasan"
KFENCE = "kfence"
UBSAN = "ubsan"
LOCKDEP = "lockdep"
REFCOUNT = "refcount"
SLEEP_IN_ATOMIC = "sleeping-in-atomic"
KMEMLEAK = "kmemleak"
GPF = "general-protection-fault"


@dataclass(frozen=True)
class Rule:
    type: str
    pattern: re.Pattern[str]
    # Title from the match and the guilty function (None when not found).
    title: Callable[[re.Match[str], str | None], str]
    cpu_group: int | None = None        # group naming the CPU the report is about
    joins: tuple[str, ...] = ()         # continues an open report of these types
    single_line: bool = False
    wants_trace: bool = True            # no frames at all -> corrupted
    guilty_group: int | None = None     # group holding the guilty symbol itself


def _in(prefix: str) -> Callable[[re.Match[str], str | None], str]:
    return lambda m, g: f"{prefix} in {g}" if g else prefix


def _fault(m: re.Match[str], g: str | None) -> str:
    what = normalise(m.group(1))
    return f"BUG: unable to handle kernel {what}" + (f" in {g}" if g else "")


def _kind_in(prefix: str) -> Callable[[re.Match[str], str | None], str]:
    """'<prefix> <kind> in <guilty>', the kind from the report's first line."""
    return lambda m, g: f"{prefix} {normalise(m.group(1))}" + (f" in {g}" if g else "")


def _generic_bug(m: re.Match[str], g: str | None) -> str:
    kind = normalise(m.group(1).partition(": ")[0])
    return f"BUG: {kind}" + (f" in {g}" if g else "")


# Order matters: the first matching rule wins. Patterns are matched at the
# start of the message after a known pr_fmt prefix ("watchdog: ", "smp: ",
# "rcu: ") is removed; all quantifiers are bounded or over disjoint classes.
RULES: tuple[Rule, ...] = (
    Rule(PANIC, re.compile(r"Kernel panic - not syncing: (.{0,300})"),
         lambda m, g: "kernel panic: " + normalise(m.group(1)), wants_trace=False),
    # mm/kasan/report.c print_error_description: "BUG: KASAN: slab-out-of-bounds in f+0x../0x.."
    Rule(KASAN, re.compile(r"BUG: KASAN: ([a-z][a-z\-]{0,40}) in (\S{1,300})"),
         _kind_in("KASAN:"), guilty_group=2),
    # mm/kfence/report.c: "BUG: KFENCE: out-of-bounds read in f+0x../0x.."
    Rule(KFENCE, re.compile(r"BUG: KFENCE: ([a-z][a-z\- ]{0,40}?) in (\S{1,300})"),
         _kind_in("KFENCE:"), guilty_group=2),
    # lib/ubsan.c ubsan_prologue: "UBSAN: array-index-out-of-bounds in file.c:12:3"
    Rule(UBSAN, re.compile(r"UBSAN: ([a-z][a-z\-]{0,60}) in \S{1,300}"), _kind_in("UBSAN:")),
    # kernel/locking/lockdep.c; syzkaller calls the first two "possible deadlock"
    Rule(LOCKDEP, re.compile(r"WARNING: possible (?:circular locking dependency|recursive locking) "
                             r"detected"), _in("possible deadlock")),
    Rule(LOCKDEP, re.compile(r"WARNING: (inconsistent lock state|bad unlock balance detected|"
                             r"suspicious RCU usage|held lock freed|lock held when returning to "
                             r"user space)"),
         lambda m, g: normalise(m.group(1)).rstrip("!") + (f" in {g}" if g else "")),
    # lib/refcount.c refcount_warn_saturate, then its WARN (joined below)
    Rule(REFCOUNT, re.compile(r"refcount_t: ([a-z][a-z\-;. ]{0,80})"), _in("refcount bug")),
    # kernel/sched/core.c __might_resched / __schedule_bug
    Rule(SLEEP_IN_ATOMIC, re.compile(r"BUG: (sleeping function called from invalid context|"
                                     r"scheduling while atomic)"),
         lambda m, g: f"BUG: {m.group(1)}" + (f" in {g}" if g else "")),
    # mm/kmemleak.c print_unreferenced; the allocation's backtrace follows
    Rule(KMEMLEAK, re.compile(r"unreferenced object 0x[0-9a-f]{1,16} \(size \d{1,10}\):"),
         _in("memory leak")),
    # arch/x86/kernel/traps.c: "Oops: general protection fault, probably for
    # non-canonical address 0x..: 0000 [#1] SMP" (6.12; "Oops: " since 6.10)
    Rule(GPF, re.compile(r"(?:Oops: )?general protection fault(?:,[^:]{1,120})?(?:: [0-9a-f]{1,8})? "
                         r"\[#\d{1,6}\]"), _in("general protection fault")),
    # arch/x86/mm/fault.c show_fault_oops, syzkaller's titles
    Rule(OOPS, re.compile(r"BUG: kernel (NULL pointer dereference), address"), _fault),
    Rule(OOPS, re.compile(r"BUG: unable to handle (page fault) for address"),
         lambda m, g: "BUG: unable to handle kernel paging request" + (f" in {g}" if g else "")),
    Rule(OOPS, re.compile(r"Unable to handle kernel (.{1,120}?) at virtual address"), _fault),
    Rule(KERNEL_BUG, re.compile(r"kernel BUG at ([^\s:]{1,200}):(\d{1,7})!"), _in("kernel BUG")),
    Rule(OOPS, re.compile(r"(?:Oops|Kernel BUG|Oops - [^\[]{1,80}|Oops: (?:Oops: )?[0-9a-f]{4,16}) \[#\d{1,6}\]"),
         _in("Oops"), joins=(OOPS, KERNEL_BUG, GPF)),
    Rule(WARNING, re.compile(r"WARNING: CPU: (\d{1,5}) PID: \d{1,10} at (?:\S{1,300} )?(\S{1,300})"),
         _in("WARNING"), cpu_group=1, guilty_group=2, joins=(REFCOUNT,)),
    Rule(SOFT_LOCKUP, re.compile(r"BUG: soft lockup - CPU#(\d{1,5}) stuck for \d{1,10}s!"),
         _in("BUG: soft lockup"), cpu_group=1),
    Rule(HARD_LOCKUP, re.compile(r"Watchdog detected hard LOCKUP on cpu (\d{1,5})"),
         _in("watchdog: hard LOCKUP"), cpu_group=1, wants_trace=False),
    Rule(RCU_STALL, re.compile(r"INFO: \w{1,40} (?:self-detected stall on CPU|detected stalls? on "
                               r"CPUs/tasks)"), _in("INFO: rcu detected stall"), wants_trace=False),
    Rule(HUNG_TASK, re.compile(r"INFO: task .{1,64}:\d{1,10} blocked for more than \d{1,10} seconds"),
         _in("INFO: task hung")),
    Rule(CSD_LOCK, re.compile(r"csd: (?:Detected|Continued) non-responsive CSD lock \(#\d{1,10}\) on "
                              r"CPU#(\d{1,5}), waiting \d{1,20} ns for CPU#\d{1,5} (\S{1,300}?)\("),
         _in("csd: non-responsive CSD lock"), cpu_group=1, wants_trace=False, guilty_group=2),
    Rule(BUG, re.compile(r"BUG: (.{1,200})"), _generic_bug),
    # arch/riscv/kernel/smpboot.c: the boot CPU gave up waiting for it.
    Rule(CPU_HOTPLUG, re.compile(r"CPU(\d{1,5}): failed to come online"),
         lambda m, g: "CPU failed to come online", cpu_group=1, single_line=True, wants_trace=False),
    # arch/riscv/kernel/cpu-hotplug.c: reported dead while OpenSBI had not
    # yet stopped the hart ("HARTn isn't stopped; status 3" just before).
    Rule(CPU_HOTPLUG, re.compile(r"CPU(\d{1,5}) may not have stopped"),
         lambda m, g: "CPU may not have stopped", cpu_group=1, single_line=True, wants_trace=False),
    Rule(LKDTM, re.compile(r"lkdtm: Performing direct entry (\w{1,64})"),
         lambda m, g: f"lkdtm: Performing direct entry {m.group(1)}", single_line=True,
         wants_trace=False),
    Rule(LKDTM_FAIL, re.compile(r"lkdtm: (X?FAIL: .{1,200})"),
         lambda m, g: "lkdtm: " + normalise(m.group(1)), single_line=True, wants_trace=False),
)
# Cheap test before the rules: every pattern contains one of these.
KEYWORDS = ("panic", "Unable to handle", "BUG", "[#", "WARNING:", "LOCKUP", "stall",
             "blocked for more than", "CSD lock", "lkdtm:", "come online", "not have stopped",
             "UBSAN:", "refcount_t:", "unreferenced object")
# pr_fmt prefixes, and arm64 die()'s "Internal error: Oops - BUG: ... [#1]"
PR_FMT = ("watchdog: ", "smp: ", "rcu: ", "NMI watchdog: ", "Internal error: ", "kmemleak: ")

# Functions never to blame (matched against the whole function name), and
# functions blamed only when nothing else in the report is left.
SKIP = re.compile("(?:" + "|".join((
    # printing and dumping
    r"_?printk\w*", r"vprintk\w*", r"dump_stack\w*", r"show_stack", r"__show_regs", r"show_regs",
    r"walk_stackframe", r"dump_backtrace", r"print_ip_sym", r"sched_show_task",
    # panic, warn, bug, die
    r"v?panic", r"nmi_panic", r"__warn\w*", r"warn_slowpath\w*", r"report_bug", r"__report_bug",
    r"die", r"__die", r"die_kernel_fault", r"make_task_dead", r"do_exit",
    # trap, fault and IRQ entry (RISC-V)
    r"do_trap\w*", r"handle_break", r"handle_exception", r"ret_from_exception\w*",
    r"do_page_fault", r"handle_page_fault", r"no_context", r"bad_area\w*", r"do_irq",
    r"handle_riscv_irq", r"riscv_intc_irq", r"handle_irq_desc", r"handle_percpu_devid_irq",
    r"generic_handle_\w+", r"ipi_mux_process", r"sbi_ipi_handle", r"handle_IPI",
    r"__handle_irq_event_percpu", r"handle_irq_event\w*", r"handle_fasteoi_irq",
    r"plic_handle_irq", r"irq_exit\w*", r"__irq_exit_rcu", r"handle_softirqs", r"__do_softirq",
    r"irqentry_\w+",
    # exception, IRQ and syscall entry (arm64)
    r"el[01]h?_?\w*_(?:irq|sync|fiq|error)\w*", r"el[01]_\w+", r"el0t_64_\w+", r"el1h_64_\w+",
    r"__el[01]_\w+", r"do_el0_svc\w*", r"el0_svc_common\w*", r"invoke_syscall", r"__arm64_sys_\w+",
    r"call_on_irq_stack", r"do_interrupt_handler", r"gic_handle_irq", r"__gic_handle_\w+",
    r"ipi_handler", r"do_handle_IPI", r"arm64_backtrace_ipi", r"handle_percpu_devid_fasteoi_nmi",
    r"arm64_notify_die", r"do_mem_abort", r"do_translation_fault", r"do_bad_area",
    r"__do_kernel_fault", r"do_kernel_fault", r"do_page_fault", r"bug_brk_handler", r"bug_handler",
    r"call_el1_break_hook", r"call_break_hook", r"brk_handler", r"do_debug_exception",
    r"do_el1_\w+", r"arch_local_irq_\w+", r"cpu_do_idle", r"arch_timer_handler_\w+",
    # exception, IRQ and syscall entry (x86-64)
    r"asm_exc_\w+", r"exc_\w+", r"asm_sysvec_\w+", r"sysvec_\w+", r"do_error_trap", r"do_trap",
    r"handle_bug", r"do_syscall_64", r"entry_SYSCALL_64\w*", r"x64_sys_call", r"__x64_sys_\w+",
    r"do_user_addr_fault", r"page_fault_oops", r"kernelmode_fixup_or_oops\w*", r"oops_\w+",
    # timers and the detectors
    r"hrtimer_\w+", r"__hrtimer_run_queues", r"__run_hrtimer", r"riscv_timer_interrupt",
    r"tick_\w+", r"update_process_times", r"watchdog\w*", r"__watchdog\w*", r"softlockup_fn",
    r"rcu_sched_clock_irq", r"rcu_pending", r"print_cpu_stall\w*", r"print_other_cpu_stall",
    r"check_cpu_stall", r"rcu_dump_cpu_stacks", r"dump_cpu_task", r"check_hung_\w+",
    r"hung_task\w*", r"csd_lock_wait\w*", r"__csd_lock_wait",
    # backtrace IPI machinery
    r"nmi_cpu_backtrace", r"nmi_trigger_cpumask_backtrace", r"arch_trigger_cpumask_backtrace",
    r"riscv_backtrace_ipi", r"trigger_\w*backtrace",
    # process start
    r"kthread", r"ret_from_fork\w*",
    # the debugging tools' own reporting and hooks
    r"kasan_\w+", r"__kasan_\w+", r"__asan_\w+", r"check_region_inline", r"print_report",
    r"kfence_\w+", r"__kfence_\w+", r"__ubsan_handle_\w+", r"ubsan_\w+",
    # FORTIFY_SOURCE: lib/string_helpers.c reports the overflow its caller made
    r"__fortify_report", r"__fortify_panic", r"fortify_panic",
    r"lock_acquire\w*", r"__lock_acquire", r"lock_release", r"__lock_release", r"validate_chain",
    r"check_\w+_bug", r"print_\w+_bug", r"print_usage_bug", r"mark_lock\w*", r"lockdep_\w+",
    r"check_noncircular", r"check_prev_add", r"check_prevs_add", r"__lockdep_\w+",
    r"refcount_\w+", r"__refcount_\w+", r"__might_sleep", r"__might_resched",
    r"__might_fault", r"__schedule_bug", r"schedule_debug\w*",
    r"kmemleak_\w+", r"__kmalloc\w*", r"kmalloc\w*", r"kmem_cache_alloc\w*",
    r"__kmem_cache_alloc\w*", r"slab_post_alloc_hook", r"__do_kmalloc_node",
)) + ")")
WEAK = re.compile("(?:" + "|".join((
    # LKDTM's dispatch and the write(2) path into it
    r"lkdtm_do_action", r"direct_entry", r"lkdtm_debugfs_\w+", r"full_proxy_write",
    r"vfs_write", r"ksys_write", r"__\w*sys_write", r"proc_reg_write",
    # scheduling and locking primitives
    r"(?:__)?schedule\w*", r"schedule_timeout\w*", r"io_schedule\w*", r"__cond_resched",
    r"preempt_schedule\w*", r"_raw_spin_\w+", r"do_raw_spin_\w+", r"queued_spin_\w+",
    r"smp_call_function\w*", r"generic_exec_single", r"cpu_relax",
    # library helpers that fault on bad input from their caller
    r"__pi_\w+", r"str[a-z]*", r"mem[a-z]*",
)) + ")")
_SUFFIX = re.compile(r"(?:\.(?:isra|constprop|part|cold|llvm|lto_priv)(?:\.\d{1,12})?)+$")
_NUMBERS = re.compile(r"\b0x[0-9a-fA-F]{1,32}\b|\b[0-9a-f]{8,32}\b|\b\d{1,32}\b")
_SPACES = re.compile(r"\s{2,200}")


# Lines that belong to a report besides registers and stack traces.
_BODY_PREFIXES = (
    "Modules linked in:", "irq event stamp:", "hardirqs last", "softirqs last", "task:",
    "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\"", "Not tainted", "Tainted:",
    "Sending NMI from CPU", "NMI backtrace for cpu", "csd: ", "rcu: ", "CPU#",
    "SMP: stopping secondary CPUs", "Kernel Offset:", "Rebooting in", "---[ end ",
    "Showing busy workqueues", "(t=", "(detected by",
    # KASAN, KFENCE, UBSAN, lockdep, kmemleak bodies
    "Read of size", "Write of size", "Allocated by task", "Freed by task", "The buggy address",
    "Memory state around", "Out-of-bounds read at", "Out-of-bounds write at", "Use-after-free read",
    "kfence-#", "index ", "other info that might help", "Possible unsafe locking",
    "*** DEADLOCK ***", "the existing dependency chain", "-> #", "stack backtrace:",
    "lock(", "inconsistent {", "{IN-", "{SOFTIRQ-", "{HARDIRQ-", "comm \"", "hex dump (first",
    "backtrace (crc", "backtrace:", "in_atomic():", "preempt_count:", "RCU nest depth:",
    "Preemption disabled at:", "CR2:", "#PF: ", "PGD ", "Hardware name:",
    # arm64 fault details (arch/arm64/mm/fault.c mem_abort_decode, show_pte)
    # and the pseudo-NMI priority mask in __show_regs
    "Mem abort info:", "Data abort info:", "ESR = ", "EC = ", "SET = ", "EA = ", "FSC = ",
    "ISV = ", "CM = ", "GCS = ", "user pgtable:", "swapper pgtable:", "pmr_save: ", "RIP: ", "RSP: ", "FS: ", "CS: ", "DR0: ", "DR3: ",
)
_HEX_DUMP = re.compile(r"(?:[0-9a-f]{2} ){8}")   # kmemleak's "6b 6b 6b ..." rows


def is_body(msg: str) -> bool:
    """Whether a line looks like part of a report: registers, frames, task
    lines, detector details."""
    if klog.is_stack_line(msg) or msg.lstrip().startswith(_BODY_PREFIXES):
        return True
    if msg.startswith("[") and "] pgd=" in msg[:40]:      # arm64 show_pte
        return True
    if _HEX_DUMP.match(msg.strip()):
        return True
    if msg[:1] == "#" and msg[1:2].isdigit():
        return True     # report_cpu_status(): "#1: 100% system, ..."
    # "smp: \tcsd: ..." and the like: the same lines behind a pr_fmt prefix.
    for prefix in PR_FMT:
        if msg.startswith(prefix):
            return msg[len(prefix):].lstrip().startswith(_BODY_PREFIXES)
    return False


def normalise(text: str) -> str:
    """Numbers and addresses out, whitespace collapsed: a stable title part."""
    text = _NUMBERS.sub("NUM", text[:300])
    return _SPACES.sub(" ", text).strip(" .")


def function_name(symbol: str) -> str:
    """'foo.isra.0+0x1e/0x2a' -> 'foo': the name a title uses."""
    return _SUFFIX.sub("", symbol.partition("+")[0])
