"""The reference model: steps in, predictions out. No kernel in it; every
rule cites the kernel function it mirrors (docs/model.md has the list).
The driver is here; each step type's transition lives with the step type
(harness/steps/), the shared kernel actions in actions.py, the detectors
in detectors.py and the timeline (branches, Run) in timeline.py."""
from __future__ import annotations

from typing import Any, Iterable

from harness.model.actions import Actions
from harness.model.detectors import Detectors
from harness.model.expect import Range
from harness.model.features import EXACT_ROWS, ROW_IPI, Features
from harness.model.kinds import KINDS, expand
from harness.model.prediction import HANG, NO_EFFECT, NOT_REACHED, REFUSED, UNMODELLED, Prediction
from harness.model.state import Activity, Cpu, MachineState, Span
from harness.model.timeline import ModelRun, Timeline
from harness.model.timing import SLACK
from harness.scenario.types import Step


class Model(Actions, Detectors, Timeline):
    """Feed steps one at a time (step()) or all at once (run())."""

    def __init__(self, features: Features | None = None, cpus: int = 4, *,
                 uart_cpu: int | None = None, reboot: bool = False) -> None:
        self.features = features or Features.riscv_6_12()
        self.reboot = reboot                 # a reset reboots the guest (no -no-reboot)
        if uart_cpu is None:
            uart_cpu = self.features.arch.uart_irq_cpu
        if cpus > self.features.nr_cpus:
            raise ValueError(f"{cpus} CPUs but NR_CPUS is {self.features.nr_cpus}")
        self.state = MachineState.boot(cpus, uart_cpu)
        self.predictions: list[Prediction] = []
        self._index = 0
        self.awaiting: str | None = None     # the event a wait_for step ends with

    def run(self, steps: Iterable[Any]) -> "ModelRun":
        for step in expand(steps, self.state.ncpus):
            self.step(step)
        return ModelRun(self.features, self.state.ncpus, list(self.predictions), self.state)

    def step(self, raw: Any) -> Prediction:
        step = raw if isinstance(raw, Step) else expand([raw], self.state.ncpus, first=len(self.predictions))[0]
        args = {**KINDS[step.kind].defaults(), **step.args} if step.kind in KINDS else dict(step.args)
        st = self.state
        start = st.clock
        self._index = len(self.predictions)
        st.now_step = self._index
        p = Prediction(index=len(self.predictions), name=step.name, kind=step.kind, args=args,
                       start=start, end=start, online_before=st.online(), online_after=st.online(),
                       activities={n: st.describe_cpu(n, start) for n in range(st.ncpus)})
        if st.wedged is not None:
            p.outcome = {NOT_REACHED}
            p.note(f"not reached: {st.wedged}")
            self.predictions.append(p)
            return p
        if step.kind not in KINDS:
            p.outcome = {UNMODELLED}
            p.note(f"the model does not know step kind '{step.kind}'")
            duration = Span(0.0, step.timeout)
        else:
            duration = KINDS[step.kind].transition(self, p, args, step)
        st = self.state                      # a handler may have replaced it (branches)
        if HANG in p.outcome and len(p.outcome) == 1:
            duration = Span(step.timeout, step.timeout + SLACK)
            if st.wedged is None:
                st.wedged = f"step '{step.name}' never completes (the console shell is blocked)"
                st.wedge_outcome = HANG
        st.clock = start + duration
        p.end = st.clock
        p.online_after = st.online()
        self._background(p, start, st.clock, certain=self.awaiting)
        self.awaiting = None
        self._counter_defaults(p)
        self.predictions.append(p)
        return p

    def _counter_defaults(self, p: Prediction) -> None:
        f, st = self.features, self.state
        rows = f.ipi_rows()
        for n in p.comparable_cpus:
            cpu = st.cpus[n]
            if cpu.irqs_off and cpu.stuck_step < p.index:
                # Interrupts off since an earlier step: no IPI is taken, every
                # counter of that CPU stays put (except NMI-delivered ones).
                for row in rows:
                    ipi = ROW_IPI.get(row)
                    if ipi is not None and f.arch.reaches_irqs_off(ipi):
                        continue
                    p.counters.setdefault(row, {})[n] = Range(0, 0)
            for row in EXACT_ROWS:
                if row in rows:
                    p.counters.setdefault(row, {}).setdefault(n, Range(0, 0))

    def hang(self, p: Prediction, why: str) -> None:
        p.outcome = {HANG}
        p.note(why)

    def console_cpus(self, p: Prediction) -> bool:
        """A console command needs some CPU that still schedules tasks."""
        if not self.state.schedulable():
            self.hang(p, "no online CPU can run a task: the console command never runs")
            return False
        return True

    def entry_cpus(self, p: Prediction, cpu: int | None, via: str,
                    background: bool = False) -> list[int]:
        """CPUs the step's action may run on. Sets the outcome and returns []
        when it cannot run."""
        st = self.state
        if via == "break":
            u = st.uart_cpu
            if st.cpus[u].irqs_off:
                p.outcome = {NO_EFFECT}
                p.note(f"the console UART interrupt is routed to CPU {u}, which has interrupts off: "
                       "the BREAK and the sysrq key are never handled")
                return []
            return [u]
        if not self.console_cpus(p):
            return []
        if cpu is None:
            return st.schedulable()
        if not 0 <= cpu < st.ncpus or not st.cpus[cpu].online:
            p.outcome = {REFUSED}
            p.status = {"at_least": 1}
            p.note(f"taskset -c {cpu}: CPU {cpu} is not online (sched_setaffinity fails)")
            return []
        if not st.cpus[cpu].schedulable:
            if background:
                p.outcome = {NO_EFFECT}
                p.note(f"CPU {cpu} never schedules ({st.describe_cpu(cpu)}): the background "
                       "command pinned to it never runs")
            else:
                self.hang(p, f"CPU {cpu} never schedules ({st.describe_cpu(cpu)}): the command "
                              "pinned to it never runs")
            return []
        return [cpu]

    def make_stuck(self, cpu: Cpu, activity: Activity, cause: str, since: Span,
                    in_hardirq: bool = False) -> None:
        st = self.state
        st.episodes += 1
        cpu.activity = activity
        cpu.cause = cause
        cpu.since = since
        cpu.touch = since
        cpu.episode = st.episodes
        cpu.in_hardirq = in_hardirq
        cpu.csd_target = None
        cpu.csd_func = None
        cpu.stuck_step = self._index


def predict(steps: Iterable[Any], features: Features | None = None, cpus: int = 4,
            reboot: bool = False) -> ModelRun:
    """Run the model over steps (repeat steps are expanded)."""
    return Model(features, cpus, reboot=reboot).run(steps)
