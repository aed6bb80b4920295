"""Ingestion: conform a batch to its definition, validate it in one pass, commit one version."""
