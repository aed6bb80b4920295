"""Experiments, runs, metrics, models and deployments, recorded in the catalog."""
