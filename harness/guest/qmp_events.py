"""The QMP event names QEMU can send, so that a scenario's `event:`
expectation naming an event that does not exist (GUEST_PANICED) is an
error in `rvharness check`, not a check that passes because nothing by that
name ever arrives.

Taken from QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18) with
`qemu-system-riscv64 -M none -nodefaults -display none -qmp stdio` and
`query-qmp-schema` (meta-type "event"); tests/guest/test_qmp_events.py asks the
installed QEMU again and fails if the list drifts."""
from __future__ import annotations

QMP_EVENTS: frozenset[str] = frozenset((
    "ACPI_DEVICE_OST",
    "BALLOON_CHANGE",
    "BLOCK_EXPORT_DELETED",
    "BLOCK_IMAGE_CORRUPTED",
    "BLOCK_IO_ERROR",
    "BLOCK_JOB_CANCELLED",
    "BLOCK_JOB_COMPLETED",
    "BLOCK_JOB_ERROR",
    "BLOCK_JOB_PENDING",
    "BLOCK_JOB_READY",
    "BLOCK_WRITE_THRESHOLD",
    "COLO_EXIT",
    "DEVICE_DELETED",
    "DEVICE_TRAY_MOVED",
    "DEVICE_UNPLUG_GUEST_ERROR",
    "DUMP_COMPLETED",
    "FAILOVER_NEGOTIATED",
    "GUEST_CRASHLOADED",
    "GUEST_PANICKED",
    "JOB_STATUS_CHANGE",
    "MEMORY_DEVICE_SIZE_CHANGE",
    "MEMORY_FAILURE",
    "MEM_UNPLUG_ERROR",
    "MIGRATION",
    "MIGRATION_PASS",
    "NETDEV_STREAM_CONNECTED",
    "NETDEV_STREAM_DISCONNECTED",
    "NIC_RX_FILTER_CHANGED",
    "POWERDOWN",
    "PR_MANAGER_STATUS_CHANGED",
    "QUORUM_FAILURE",
    "QUORUM_REPORT_BAD",
    "RDMA_GID_STATUS_CHANGED",
    "RESET",
    "RESUME",
    "RTC_CHANGE",
    "SHUTDOWN",
    "SPICE_CONNECTED",
    "SPICE_DISCONNECTED",
    "SPICE_INITIALIZED",
    "SPICE_MIGRATE_COMPLETED",
    "STOP",
    "SUSPEND",
    "SUSPEND_DISK",
    "UNPLUG_PRIMARY",
    "VFU_CLIENT_HANGUP",
    "VNC_CONNECTED",
    "VNC_DISCONNECTED",
    "VNC_INITIALIZED",
    "VSERPORT_CHANGE",
    "WAKEUP",
    "WATCHDOG",
))
