"""Dialog definitions as data, the engine over `transitions`, and the reply templates."""
