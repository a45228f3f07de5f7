"""CI sharding: --shard K/N runs the K-th of N parts of the plan, and
--shard auto reads GitLab's CI_NODE_INDEX/CI_NODE_TOTAL (`parallel:`).

A part is a set of whole kernels, so that each kernel is built in one shard
only (a build takes minutes; a boot seconds). Kernels go, largest first,
to the part with the fewest cells so far (ties: the lower part), from the
plan alone, so every shard computes the same split. With fewer kernels
than shards the extra shards have nothing to do, and say so."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from harness.core.errors import InputError
from harness.run.parallel.plan import PlanCell

_SPEC = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int       # 1-based, as GitLab's CI_NODE_INDEX
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse(spec: str, env: Mapping[str, str] | None = None) -> Shard:
    env = os.environ if env is None else env
    if spec == "auto":
        idx, tot = env.get("CI_NODE_INDEX"), env.get("CI_NODE_TOTAL")
        if not idx or not tot:
            return Shard(1, 1)        # a job without `parallel:` is the whole run
        spec = f"{idx}/{tot}"
        where = "CI_NODE_INDEX/CI_NODE_TOTAL"
    else:
        where = "--shard"
    m = _SPEC.match(spec)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(None, f"{where}: expected K/N with 1 <= K <= N (or 'auto'), got {spec!r}")
    return Shard(int(m.group(1)), int(m.group(2)))


def kernels_of(all_cells: Sequence[PlanCell], shard: Shard) -> list[str]:
    """The kernels shard runs, in plan order."""
    sizes: dict[str, int] = {}
    for c in all_cells:
        sizes[c.kernel] = sizes.get(c.kernel, 0) + 1
    order = sorted(sizes, key=lambda k: (-sizes[k], list(sizes).index(k)))
    load = [0] * shard.total
    owner: dict[str, int] = {}
    for k in order:
        part = min(range(shard.total), key=lambda i: (load[i], i))
        owner[k] = part
        load[part] += sizes[k]
    return [k for k in sizes if owner[k] == shard.index - 1]


def select(all_cells: Sequence[PlanCell], shard: Shard) -> list[PlanCell]:
    mine = set(kernels_of(all_cells, shard))
    return [c for c in all_cells if c.kernel in mine]
