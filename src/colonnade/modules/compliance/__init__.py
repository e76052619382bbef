"""Compliance: the audit log, personal-data export and erasure, retention."""
