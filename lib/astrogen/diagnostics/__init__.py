"""Diagnostics against ground truth: metrics, calibration, two-sample tests, MCMC checks."""
