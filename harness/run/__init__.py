"""Running scenarios: one scenario on one kernel (runner), one command's work
(session), repeats for bisect and review, and the parallel engine on Dask."""
