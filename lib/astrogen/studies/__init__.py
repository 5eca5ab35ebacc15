"""Per-study pipelines: the cached, parameterised steps a study's notebooks call."""
