"""The catalog: append-only Delta tables recording definitions, versions and events."""
