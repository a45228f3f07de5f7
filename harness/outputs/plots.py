"""The report's pictures, as inline SVG made with matplotlib (Agg, no
display needed): hotplug online latency per kernel with the bound drawn,
IPI counter deltas expected versus observed as heat maps, and a timeline of
steps, kernel reports and QMP events."""
from __future__ import annotations

import io
import re
from typing import Any

from harness.outputs.results import SavedRun

_TS = re.compile(r"^\[\s*(\d+\.\d+)\]")
OK, BAD, GREY = "#2e7d32", "#c62828", "#9e9e9e"


def _plt() -> Any:
    """matplotlib.pyplot on the Agg backend, configured once."""
    import matplotlib  # heavy: matplotlib takes about 0.3 s to load, only report.html needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: as above

    plt.rcParams.update({"font.size": 9, "svg.fonttype": "none", "figure.dpi": 96})
    return plt


def _svg(fig) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg"):]           # inline: no XML prolog or DOCTYPE


# ---------------------------------------------------------------- latency

def hotplug_latencies(run: SavedRun) -> list[float]:
    """Online-write latencies measured in the guest (ms), in step order.
    Whether a step brought a CPU online is in the model's copy of its
    arguments; without predictions, in its name."""
    online = {p.get("name"): bool((p.get("args") or {}).get("online"))
              for p in run.predictions.get("steps") or [] if p.get("kind") == "hotplug"}
    steps = run.observations.get("steps") or {}
    return [float(s["latency_ms"]) for name, s in steps.items()
            if s.get("kind") == "hotplug" and "latency_ms" in s
            and online.get(name, "online" in name and "offline" not in name)]


def latency_plot(series: dict[str, list[float]], bound_ms: float | None, title: str) -> str:
    """One strip of points per kernel, with the bound as a red line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.7 + 0.55 * len(series)))
    names = list(series)
    for i, name in enumerate(names):
        values = series[name]
        over = [v for v in values if bound_ms is not None and v > bound_ms]
        under = [v for v in values if bound_ms is None or v <= bound_ms]
        jitter = [(k % 5 - 2) * 0.06 for k in range(len(values))]
        ax.scatter(under, [i + j for j in jitter[:len(under)]], s=18, color=OK, alpha=0.8, zorder=3)
        ax.scatter(over, [i + j for j in jitter[len(under):]], s=18, color=BAD, alpha=0.8, zorder=3)
    if bound_ms is not None:
        ax.axvline(bound_ms, color=BAD, linestyle="--", linewidth=1.2)
        ax.text(bound_ms, len(names) - 0.4, f" bound {bound_ms:g} ms", color=BAD, va="bottom")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.2)
    ax.set_xlim(left=0)
    ax.set_xlabel("CPU online write, ms (timed in the guest)")
    ax.set_title(title, loc="left")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


# ---------------------------------------------------------------- IPI heat maps

def _range(v: Any) -> tuple[int, int | None]:
    if isinstance(v, int):
        return v, v
    if isinstance(v, dict) and "at_least" in v:
        return int(v["at_least"]), None
    if isinstance(v, dict) and "between" in v:
        return int(v["between"][0]), int(v["between"][1])
    return 0, None


def _add(a: tuple[int, int | None], b: tuple[int, int | None]) -> tuple[int, int | None]:
    return a[0] + b[0], (None if a[1] is None or b[1] is None else a[1] + b[1])


def _scenario_ranges(counters: list[dict[str, Any]], a: str, b: str,
                     cpus: list[str]) -> dict[str, dict[str, tuple[int, int | None]]]:
    """The scenario's own counter expectations between snapshots a and b."""
    out: dict[str, dict[str, tuple[int, int | None]]] = {}
    for e in counters:
        if list(e.get("between") or []) != [a, b]:
            continue
        for c in cpus:
            def pick(key: str) -> int | None:
                table = e.get(key) or {}
                v = table.get(int(c), table.get(c, table.get("others")))
                return int(v) if v is not None else None
            exact, lo, hi = pick("delta"), pick("at_least"), pick("at_most")
            if exact is not None:
                out.setdefault(e["row"], {})[c] = (exact, exact)
            elif lo is not None or hi is not None:
                out.setdefault(e["row"], {})[c] = (lo or 0, hi)
    return out


def counter_pairs(run: SavedRun, counters: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """For each pair of consecutive snapshots: rows x CPUs, the model's
    predicted delta (a range), the scenario's own expectation where it has
    one (counters: the args of its counter expectations) and the observed
    delta."""
    snaps = run.observations.get("snapshots") or {}
    steps = run.predictions.get("steps") or []
    order = [s for s in steps if s.get("kind") == "snapshot"]
    labels = [((s.get("args") or {}).get("label") or s.get("name")) for s in order]
    pairs = []
    for (i, a), (j, b) in zip(list(enumerate(labels))[:-1], list(enumerate(labels))[1:]):
        if a not in snaps or b not in snaps:
            continue
        first, last = order[i]["index"], order[j]["index"]
        expected: dict[str, dict[str, tuple[int, int | None]]] = {}
        for p in steps:
            if first < p["index"] <= last:
                for row, cpus in (p.get("counters") or {}).items():
                    for cpu, v in cpus.items():
                        cur = expected.setdefault(row, {}).get(cpu, (0, 0))
                        expected[row][cpu] = _add(cur, _range(v))
        before, after = snaps[a]["rows"], snaps[b]["rows"]
        rows = [r for r in after if r in before and r in expected]
        if not rows:
            continue
        cpus = sorted({c for r in rows for c in after[r]}, key=int)
        observed = {r: {c: after[r].get(c, 0) - before[r].get(c, 0) for c in cpus} for r in rows}
        pairs.append({"before": a, "after": b, "rows": rows, "cpus": cpus,
                      "expected": expected, "observed": observed,
                      "scenario": _scenario_ranges(counters or [], a, b, cpus)})
    return pairs


def _fits(v: int, r: tuple[int, int | None]) -> bool:
    return v >= r[0] and (r[1] is None or v <= r[1])


def _label(r: tuple[int, int | None]) -> str:
    if r[1] == r[0]:
        return str(r[0])
    return f"≥{r[0]}" if r[1] is None else f"{r[0]}–{r[1]}"


def heatmap(pair: dict[str, Any]) -> str:
    """Side by side: what the scenario expects (when it says), what the model
    predicts, what was observed; an observed cell outside either is red."""
    plt = _plt()
    rows, cpus = pair["rows"], pair["cpus"]
    exp = [[pair["expected"][r].get(c, (0, None)) for c in cpus] for r in rows]
    obs = [[pair["observed"][r][c] for c in cpus] for r in rows]
    own = [[pair["scenario"].get(r, {}).get(c) for c in cpus] for r in rows]
    vmax = max([1] + [v for line in obs for v in line] + [e[0] for line in exp for e in line])
    panels = []
    if any(v is not None for line in own for v in line):
        panels.append(("the scenario expects", [[(v[0] if v else 0) for v in line] for line in own],
                       [[_label(v) if v else "–" for v in line] for line in own]))
    panels.append(("the model predicts", [[e[0] for e in line] for line in exp],
                   [[_label(e) for e in line] for line in exp]))
    panels.append(("observed", obs, [[str(v) for v in line] for line in obs]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 + 0.75 * len(cpus) * len(panels), 0.9 + 0.32 * len(rows)),
                             sharey=True)
    for ax, (title, grid, text) in zip(axes, panels):
        observed_panel = ax is axes[-1]
        ax.imshow(grid, cmap="Blues", vmin=0, vmax=vmax, aspect="auto")
        for y, line in enumerate(text):
            for x, t in enumerate(line):
                wrong = observed_panel and (not _fits(obs[y][x], exp[y][x]) or
                                            (own[y][x] is not None and not _fits(obs[y][x], own[y][x])))
                if wrong:
                    ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=BAD, edgecolor=BAD, lw=2))
                ax.text(x, y, t, ha="center", va="center", fontsize=8,
                        color="white" if wrong or grid[y][x] > vmax * 0.6 else "black",
                        fontweight="bold" if wrong else "normal")
        ax.set_xticks(range(len(cpus)), [f"CPU{c}" for c in cpus])
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(rows)), rows)
    fig.suptitle(f"IPI counter deltas {pair['before']} → {pair['after']}", x=0.01, y=1.0 + 0.5 / (0.9 + 0.32 * len(rows)),
                 ha="left", fontsize=9, fontweight="bold")
    return _svg(fig)


# ---------------------------------------------------------------- timeline

def timeline_events(run: SavedRun) -> dict[str, list]:
    """Steps (start, length, name, kind) end to end after boot; kernel reports
    at their printk timestamp; QMP events at their arrival."""
    obs = run.observations
    t = float(obs.get("boot_seconds") or 0.0)
    steps = []
    for name, s in (obs.get("steps") or {}).items():
        length = float(s.get("seconds") or 0.0)
        steps.append((t, length, name, s.get("kind", "")))
        t += length
    lines = run.console.split("\n")
    reports = []
    for r in (obs.get("console") or {}).get("reports") or []:
        first = (r.get("lines") or [0])[0]
        ts = None
        for k in range(max(0, first - 1), min(len(lines), first + 3)):
            m = _TS.match(lines[k])
            if m:
                ts = float(m.group(1))
                break
        if ts is not None:
            reports.append((ts, f"{r.get('type')}: {(r.get('title') or '')[:50]}"))
    qmp = [(float(e.get("t", 0.0)), e.get("event", "?")) for e in obs.get("qmp_events") or []]
    return {"steps": steps, "reports": reports, "qmp": qmp, "boot": float(obs.get("boot_seconds") or 0.0)}


def timeline(run: SavedRun) -> str | None:
    plt = _plt()
    ev = timeline_events(run)
    if not ev["steps"] and not ev["qmp"]:
        return None
    fig, ax = plt.subplots(figsize=(9, 2.2))
    ax.broken_barh([(0, ev["boot"])], (2.6, 0.8), facecolors=GREY)
    kinds = sorted({k for *_, k in ev["steps"]})
    palette = plt.get_cmap("tab10")
    for start, length, name, kind in ev["steps"]:
        ax.broken_barh([(start, max(length, 0.02))], (2.6, 0.8),
                       facecolors=palette(kinds.index(kind) % 10), edgecolor="white", linewidth=0.5)
    for ts, label in ev["reports"]:
        ax.plot([ts], [1.5], marker="v", color=BAD)
    for ts, label in ev["qmp"]:
        ax.plot([ts], [0.5], marker="o", color="#1565c0", markersize=4)
    handles = [plt.Rectangle((0, 0), 1, 1, color=GREY, label="boot")]
    handles += [plt.Rectangle((0, 0), 1, 1, color=palette(i % 10), label=k) for i, k in enumerate(kinds)]
    ax.legend(handles=handles, ncol=min(8, len(handles)), fontsize=7, loc="upper left",
              bbox_to_anchor=(0, -0.35), frameon=False)
    ax.set_yticks([0.5, 1.5, 3.0], ["QMP events", "kernel reports", "steps"])
    ax.set_ylim(0, 3.7)
    ax.set_xlim(left=0)
    ax.set_xlabel("seconds since QEMU started (steps end to end after boot; reports at printk time)")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)
