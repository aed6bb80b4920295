"""Bridges to systems outside the store (MLflow)."""
