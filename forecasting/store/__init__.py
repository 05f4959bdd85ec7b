"""PostgreSQL store: writers (version-aware upsert, quarantine, run lineage) and selectors (reads)."""
