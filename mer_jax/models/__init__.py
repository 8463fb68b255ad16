"""The networks (one file each), their shared blocks, the registry and complexity counters."""
