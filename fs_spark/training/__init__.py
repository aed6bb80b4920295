"""Training sets: lookups, the point-in-time join, builds, manifests and rebuilds."""
