"""Watching the store: the figures of each data path, its health, and anomalies in its history."""
