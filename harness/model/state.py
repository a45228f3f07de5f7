"""The modelled machine: online CPUs, what each is doing, a virtual clock.

Time is an interval [lo, hi] of seconds since boot: the model does not know
how long a console command takes, only bounds, and detectors that fire a
fixed time after a CPU got stuck are judged against those bounds."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Span:
    lo: float
    hi: float

    def __add__(self, other: "Span | float") -> "Span":
        if isinstance(other, Span):
            return Span(self.lo + other.lo, self.hi + other.hi)
        return Span(self.lo + other, self.hi + other)

    def union(self, other: "Span") -> "Span":
        return Span(min(self.lo, other.lo), max(self.hi, other.hi))

    def to_json(self) -> list[float]:
        return [round(self.lo, 3), round(self.hi, 3)]

    def __str__(self) -> str:
        if abs(self.hi - self.lo) < 1e-9:
            return f"{self.lo:.2f}s"
        return f"{self.lo:.2f}-{self.hi:.2f}s"


class Activity(str, Enum):
    """A CPU's base state. A busy loop (load) is tracked separately: an
    IDLE CPU with a load running on it is busy (see MachineState.busy)."""
    OFFLINE = "offline"
    IDLE = "idle"
    HARDLOCKUP = "hardlockup"     # in the kernel with interrupts off, forever
    SOFTLOCKUP = "softlockup"     # in the kernel, interrupts on, preemption off, forever
    KDB = "kdb"                   # held in kdb (the machine stays in the debugger)

    def __str__(self) -> str:
        return self.value


BUSY = "busy"
MAYBE_BUSY = "idle-or-busy"


@dataclass
class Cpu:
    n: int
    activity: Activity = Activity.IDLE
    cause: str = ""                      # what made it stuck: "lkdtm HARDLOCKUP", ...
    since: Span | None = None            # when it became stuck
    touch: Span | None = None            # soft-lockup watchdog reference time
    episode: int = 0                     # distinguishes successive stuck episodes
    in_hardirq: bool = False             # stuck inside an interrupt handler
    csd_target: int | None = None        # stuck waiting on a cross call to this CPU
    csd_func: str | None = None          # the function of that cross call
    stuck_step: int = -1                 # index of the step that made it stuck

    @property
    def online(self) -> bool:
        return self.activity is not Activity.OFFLINE

    @property
    def irqs_off(self) -> bool:
        return self.activity is Activity.HARDLOCKUP

    @property
    def stuck(self) -> bool:
        return self.activity in (Activity.HARDLOCKUP, Activity.SOFTLOCKUP)

    @property
    def schedulable(self) -> bool:
        """Can a task (a console command pinned here) run on it?"""
        return self.activity is Activity.IDLE


@dataclass
class Load:
    """A busy loop in user space, pinned to cpu (None: its CPU went offline,
    the scheduler broke the affinity and it may run anywhere)."""
    cpu: int | None
    start: Span
    end: Span | None                     # None: until the end of the scenario
    step: str = ""
    start_step: int = -1                 # index of the step that started it

    def running(self, t: Span, now_step: int | None = None) -> str:
        """'yes', 'no' or 'maybe' at time t (during step now_step). A load is
        surely running in the steps after the one that started it."""
        if self.end is not None and self.end.hi <= t.lo:
            return "no"
        if now_step is not None and self.start_step >= 0:
            started = "yes" if now_step > self.start_step else "maybe"
        elif self.start.lo > t.hi:
            return "no"
        else:
            started = "yes" if self.start.hi <= t.lo else "maybe"
        if started == "yes" and (self.end is None or self.end.lo >= t.hi):
            return "yes"
        return "maybe"


@dataclass
class MachineState:
    ncpus: int
    cpus: list[Cpu]
    clock: Span = field(default_factory=lambda: Span(0.0, 0.0))
    loads: list[Load] = field(default_factory=list)
    uart_cpu: int = 0
    # (sender, target) -> certain: a cross-call csd of sender's cfd_data
    # that target never ran, so the csd stays locked (kernel/smp.c csd_lock).
    pending_csd: dict[tuple[int, int], bool] = field(default_factory=dict)
    # CPUs the generic kgdb_roundup_cpus() will skip (kgdb_info[cpu].rounding_up).
    rounding_up: set[int] = field(default_factory=set)
    hotplug_lock: str | None = None      # why cpus_read_lock() is held forever
    wedged: str | None = None            # why no further step can run
    wedge_outcome: str | None = None
    last_hotplug: Span | None = None
    # (start, longest duration) of stretches in which CPUs run with
    # interrupts off (kdb sessions, a sysrq-l wait in the UART interrupt):
    # the watchdog hrtimers that drive the lockup detectors stand still.
    blackouts: list[tuple[float, float]] = field(default_factory=list)
    reported: set[str] = field(default_factory=set)
    episodes: int = 0
    now_step: int | None = None          # index of the step being modelled
    # one-off reports due at a known time: (key, pattern, earliest, latest, why)
    timers: list[tuple[str, str, float, float, str]] = field(default_factory=list)
    spinlock_held: bool = False          # LKDTM SPINLOCKUP's lock_me_up is taken

    @classmethod
    def boot(cls, ncpus: int, uart_cpu: int = 0) -> "MachineState":
        if ncpus < 1:
            raise ValueError("a machine needs at least one CPU")
        return cls(ncpus, [Cpu(i) for i in range(ncpus)], uart_cpu=min(uart_cpu, ncpus - 1))

    def online(self) -> list[int]:
        return [c.n for c in self.cpus if c.online]

    def stuck(self) -> list[Cpu]:
        return [c for c in self.cpus if c.stuck]

    def busy(self, n: int, t: Span | None = None) -> str:
        """'yes', 'no' or 'maybe': is a busy loop running on CPU n at t?"""
        t = t or self.clock
        cpu = self.cpus[n]
        if not cpu.schedulable:
            return "no"
        verdict = "no"
        for load in self.loads:
            if load.cpu is not None and load.cpu != n:
                continue
            r = load.running(t, self.now_step)
            if load.cpu is None and r != "no":
                r = "maybe"          # a floating task may be on any CPU
            if r == "yes":
                return "yes"
            if r == "maybe":
                verdict = "maybe"
        return verdict

    def describe_cpu(self, n: int, t: Span | None = None) -> str:
        cpu = self.cpus[n]
        if cpu.activity is not Activity.IDLE:
            text = str(cpu.activity)
            return f"{text} ({cpu.cause})" if cpu.cause else text
        b = self.busy(n, t)
        return {"yes": BUSY, "maybe": MAYBE_BUSY}.get(b, "idle")

    def schedulable(self) -> list[int]:
        return [c.n for c in self.cpus if c.schedulable]

    def watchdog_buddy(self, n: int) -> int | None:
        """The CPU whose buddy check covers CPU n: the previous online CPU,
        wrapping (kernel/watchdog_buddy.c watchdog_next_cpu); None when n is
        the only one."""
        online = self.online()
        if n not in online or len(online) < 2:
            return None
        i = online.index(n)
        return online[i - 1]
