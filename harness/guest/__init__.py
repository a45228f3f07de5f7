"""One guest under QEMU: the command line and its allow-list, the machine (a
context manager that always ends QEMU), the console, QMP and its events, vCPU
probes and the faults injected from outside."""
