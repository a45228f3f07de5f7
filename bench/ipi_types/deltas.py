"""Per-row, per-CPU /proc/interrupts deltas between consecutive snapshots
of a run (reads <out>/*/*/observations.json). Used for docs/ipi-types.md.

    python bench/ipi_types/deltas.py OUT [--rows 'Rescheduling interrupts,...'] [--pairs a:b,c:d]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IPI_ROWS = ("Rescheduling interrupts", "Function call interrupts", "CPU stop interrupts",
            "CPU stop (for crash dump) interrupts", "IRQ work interrupts",
            "Timer broadcast interrupts", "CPU backtrace interrupts", "KGDB roundup interrupts")


def deltas(obs: dict, a: str, b: str, rows: list[str]) -> dict[str, dict[int, int]]:
    sa, sb = obs["snapshots"][a], obs["snapshots"][b]
    out = {}
    for row in rows:
        ra, rb = sa["rows"].get(row), sb["rows"].get(row)
        if ra is None or rb is None:
            continue
        out[row] = {int(c): rb[c] - ra[c] for c in rb if c in ra}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", default=",".join(IPI_ROWS))
    ap.add_argument("--pairs", default="", help="a:b,c:d (default: consecutive snapshots)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [r for r in args.rows.split(",") if r]
    files = sorted(Path(args.out).glob("*/*/observations.json"))
    if not files:
        print(f"{args.out}: no observations.json", file=sys.stderr)
        return 2
    result = {}
    for f in files:
        obs = json.loads(f.read_text())
        labels = list(obs["snapshots"])
        pairs = ([tuple(p.split(":")) for p in args.pairs.split(",")] if args.pairs
                 else list(zip(labels, labels[1:])))
        scn = f.parent.name
        result[scn] = {}
        for a, b in pairs:
            if a not in obs["snapshots"] or b not in obs["snapshots"]:
                continue
            d = deltas(obs, a, b, rows)
            result[scn][f"{a}->{b}"] = d
            if not args.json:
                cells = "  ".join(f"{row.split()[0][:6]}:" + ",".join(f"{v}" for _, v in sorted(per.items()))
                                  for row, per in d.items() if any(per.values()))
                print(f"{scn:30s} {a:>10s}->{b:<10s} {cells}")
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
