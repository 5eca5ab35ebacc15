"""Simulators with known ground truth, one module per study."""
