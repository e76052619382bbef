"""The kernel: small, boring pieces every module uses. It imports no module."""
