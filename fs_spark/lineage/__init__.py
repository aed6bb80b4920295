"""The lineage graph over the catalog, its queries and pictures, OpenLineage events and reconciliation."""
