"""Physical constants in SI units (CODATA 2018 / IAU 2015 nominal values)."""

G = 6.67430e-11
"""Newton's constant [m^3 kg^-1 s^-2]."""

M_SUN = 1.98847e30
"""Solar mass [kg]."""

KPC = 3.0856775814913673e19
"""Kiloparsec [m]."""

KM_S = 1.0e3
"""Kilometre per second [m s^-1]."""
