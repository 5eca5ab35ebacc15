"""astrogen."""
