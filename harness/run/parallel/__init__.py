"""Many VMs at once, on this machine or a Dask cluster (issue 11).

cluster.py opens the Dask client (an in-process LocalCluster for -j, or an
existing scheduler) and runs `rvharness worker`; tasks.py holds the two
task types, build (keyed by the kernel cache key) and boot (one scenario on
one kernel, returning its verdict and artifacts); engine.py submits a plan's
cells and collects their results in the serial order; plan.py, shard.py,
merge.py and resume.py are the plan of a run, its CI shards, their merge
and the rerun of what a killed run left without a verdict; ledger.py is a
worker's record of its QEMU processes, swept when it starts again."""
