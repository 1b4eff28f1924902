"""gradbot: the composition root (settings, app factory, web views, pipeline, services, CLI)."""
