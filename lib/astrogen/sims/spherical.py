"""What every spherical system in ``sims`` shares: its scales and the checks on its parameters."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from astrogen.constants import G


class SphericalScales:
    """Mixin for a frozen dataclass with fields ``mass`` M [kg], ``scale_radius`` a [m] and
    ``r_max`` (truncation, in units of a)."""

    mass: float
    scale_radius: float
    r_max: float

    def _check_positive(self) -> None:
        if not (self.mass > 0 and self.scale_radius > 0 and self.r_max > 0):
            raise ValueError("mass, scale_radius and r_max must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def velocity_unit(self) -> float:
        """:math:`\\sqrt{GM/a}` [m/s]."""
        return float(np.sqrt(G * self.mass / self.scale_radius))

    @property
    def acceleration_unit(self) -> float:
        """:math:`GM/a^2` [m/s²]."""
        return G * self.mass / self.scale_radius**2
