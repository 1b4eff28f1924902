"""Redis session state, dedup, per-student lock, token cache; durable SQL records."""
