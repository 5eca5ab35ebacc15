"""astrogen: generative models for astrophysics, measured against simulators with known truth.

Entry points: :func:`astrogen.models.flows.fit_density` (conditional density estimation with zuko flows)
and :func:`astrogen.dynamics.cbe_accelerations` (accelerations from a differentiable ln f).
"""
