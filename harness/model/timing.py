"""Guest-time bounds the model places events with, and the crash points it
treats as background. Each bound says where it was measured (docs/model.md)."""
from __future__ import annotations

import math

from harness.model.state import Span

# crash types whose effect does not depend on the CPU they run on
LKDTM_ANYWHERE = ("WARNING", "WARNING_MESSAGE", "PANIC", "BUG", "EXCEPTION", "HUNG_TASK")

INF = math.inf

# Step durations (seconds of guest time, lower and upper bound). The model
# only needs them to place the lockup detectors' reports in time.
DUR_CONSOLE = Span(0.01, 2.0)        # a console command
DUR_SNAPSHOT = Span(0.01, 0.5)
DUR_BACKGROUND = Span(0.01, 0.5)     # starting a background writer (lkdtm, load)
DUR_SYSRQ = Span(0.05, 1.5)
DUR_BT_WAIT = Span(10.0, 11.5)       # lib/nmi_backtrace.c: 10 * 1000 x mdelay(1); measured 10.2 s
DUR_KDB = Span(0.3, 3.0)
DUR_KDB_TIMEOUT = Span(1.0, 1.2)     # debug_core.c kgdb_cpu_enter: MSEC_PER_SEC x udelay(1000)
DUR_ONLINE_FAST = Span(0.05, 0.8)    # measured ~0.10 s, up to 0.51 s on a loaded host
DUR_ONLINE_STALL = Span(0.05, 1.6)   # measured ~1.05 s in 4 of 15 with 3908ba2e0b24 reverted
DUR_OFFLINE = Span(0.05, 1.0)
# Upper bound claimed for a "fast" online: between the two measured
# populations, fixed kernel up to 510 ms (host loaded by a second QEMU) and
# the 3908ba2e0b24 stall 950-4020 ms (a timer wake-up of a CPU in WFI).
FAST_ONLINE_MS = 800
CSD_TIMEOUT = 5.0                    # kernel/smp.c csd_lock_timeout = 5000 ms
CSD_DUMP_WAIT = 10.0
SLACK = 1.0                          # timer and console jitter added to detector deadlines
