"""Loaders for the real data formats of the seed studies, with explicit validation errors."""
