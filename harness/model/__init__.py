"""A plain-Python reference model of the kernel's IPI machinery on an SMP
machine (Linux 6.12, RISC-V; arm64 pseudo-NMI as a second profile): given
scenario steps, what /proc/interrupts, the console and kdb should show.

    from harness.model import Features, predict
    run = predict(scenario.steps, Features.riscv_6_12(), cpus=4)
    for claim_id, description, expected in run.claims(): ...

docs/model.md lists every assumption with the kernel function behind it."""
from harness.model.detectors import Event
from harness.model.engine import Model, predict
from harness.model.expect import Range, one_of, satisfies
from harness.model.features import (
    ARM64,
    ARM64_PSEUDO_NMI,
    BACKTRACE_ROW,
    CALL_ROW,
    EXACT_ROWS,
    KGDB_ROW,
    NOISY_ROWS,
    RISCV64,
    ArchProfile,
    Features,
)
from harness.model.kdb_cpus import available_cpus, parse_available
from harness.model.narrate import explain
from harness.model.prediction import (
    BacktracePrediction,
    Claim,
    HotplugPrediction,
    KdbPrediction,
    PredictedLine,
    Prediction,
    SnapshotPrediction,
)
from harness.model.state import Activity, MachineState, Span
from harness.model.timeline import ModelRun

__all__ = [
    "ARM64", "ARM64_PSEUDO_NMI", "Activity", "ArchProfile", "BACKTRACE_ROW", "BacktracePrediction",
    "CALL_ROW", "Claim", "EXACT_ROWS", "Event", "Features", "HotplugPrediction", "KGDB_ROW",
    "KdbPrediction", "MachineState", "Model", "NOISY_ROWS", "Prediction", "RISCV64", "Range",
    "PredictedLine", "ModelRun", "SnapshotPrediction", "Span", "available_cpus", "explain", "one_of",
    "parse_available", "predict", "satisfies",
]
