"""The reference model against the real patched kernel: random sequences of
hotplug, sysrq-l, kdb and load steps, each cross-checked claim by claim."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from helpers import rvharness

SEQUENCES = 20


def random_scenario(rng: random.Random, index: int) -> str:
    online = {0, 1, 2, 3}
    steps = ["  - snapshot: s0"]
    for i in range(1, rng.randint(3, 5) + 1):
        kind = rng.choice(["hotplug", "sysrq", "kdb", "load"])
        if kind == "hotplug":
            # CPU 0 stays: the PLIC routes the console UART there.
            cpu = rng.choice([1, 2, 3])
            want = cpu not in online
            if not want and len(online) == 1:
                continue
            (online.add if want else online.discard)(cpu)
            steps.append(f"  - hotplug: {{cpu: {cpu}, online: {str(want).lower()}}}")
        elif kind == "sysrq":
            steps.append(f"  - sysrq: {{key: l, cpu: {rng.choice(sorted(online))}}}")
        elif kind == "kdb":
            steps.append(f"  - kdb: {{cpu: {rng.choice(sorted(online))}, commands: [btc, cpu]}}")
        else:
            steps.append(f"  - load: {{cpu: {rng.choice(sorted(online))}, seconds: 2}}")
        steps.append(f"  - snapshot: s{i}")
    return f"name: random-{index:02d}\nmachine: {{cpus: 4}}\nsteps:\n" + "\n".join(steps) + \
        "\nexpect:\n  - model: true\n"


@pytest.mark.integration
def test_random_sequences_agree_with_model(default_kernel, tmp_path: Path) -> None:
    rng = random.Random(20261121)
    scen = tmp_path / "scenarios"
    scen.mkdir()
    for i in range(SEQUENCES):
        (scen / f"random-{i:02d}.yaml").write_text(random_scenario(rng, i))
    out = tmp_path / "out"
    proc = rvharness("run", str(scen), "--out", str(out), timeout=1800)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary) == SEQUENCES
    disagreements = [(s["scenario"], c["name"], c["observed"]) for s in summary for c in s["checks"]
                     if c["verdict"] not in ("pass", "not-compared")]
    compared = sum(len(s["checks"]) for s in summary)
    print(f"{SEQUENCES} sequences, {compared} claims compared, {len(disagreements)} disagreements")
    assert proc.returncode == 0 and not disagreements, (disagreements[:20], proc.stdout[-3000:])
    assert compared > 20 * SEQUENCES
