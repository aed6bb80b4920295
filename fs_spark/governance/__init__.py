"""Governance: access policies and their audit log, deprecation schedules."""
