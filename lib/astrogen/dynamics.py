r"""Gravitational accelerations from a distribution function via the collisionless Boltzmann equation.

For a steady state, :math:`\partial_t f = 0` and the collisionless Boltzmann equation reads

.. math:: v \cdot \nabla_x \ln f + a \cdot \nabla_v \ln f = 0,

which holds at every velocity :math:`v` for the single acceleration :math:`a(x)`. Following
An, Naik, Evans & Burrage (2021), at a position :math:`x` we take :math:`K` velocities
:math:`v_k`, evaluate both gradients by automatic differentiation of any differentiable
:math:`\ln f` (e.g. a normalising flow), and solve the weighted least-squares problem

.. math:: \hat a = \arg\min_a \sum_k w_k\,\big(v_k\cdot g^x_k + a\cdot g^v_k\big)^2
          = -\Big(\sum_k w_k\, g^v_k g^{v\top}_k\Big)^{-1} \sum_k w_k\, g^v_k\,(v_k\cdot g^x_k).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from tqdm.auto import tqdm

LogDensity = Callable[[torch.Tensor], torch.Tensor]


def phase_space_gradients(
    log_prob: LogDensity, positions: torch.Tensor, velocities: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """∇ₓ ln f and ∇ᵥ ln f at phase-space points.

    Args:
        log_prob: maps (N, 6) phase-space points ``[x, v]`` to ln f, shape (N,).
        positions, velocities: shape (N, 3) each.

    Returns:
        ``(grad_x, grad_v)``, each (N, 3), float64, in the units of ``1/x`` and ``1/v``.
    """
    w = torch.cat([positions, velocities], -1).to(torch.float64).detach().requires_grad_(True)
    with torch.enable_grad():
        lp = log_prob(w)
        (grad,) = torch.autograd.grad(lp.sum(), w)
    return grad[:, :3], grad[:, 3:]


def cbe_accelerations(
    log_prob: LogDensity,
    positions: torch.Tensor | np.ndarray,
    velocities: torch.Tensor | np.ndarray,
    weights: torch.Tensor | np.ndarray | None = None,
    *,
    chunk: int = 16,
    progress: bool = False,
) -> torch.Tensor:
    """Solve the steady collisionless Boltzmann equation for the acceleration at each position.

    Args:
        log_prob: differentiable ln f on (N, 6) phase-space points ``[x, v]`` (any normalisation:
            the constant drops out of the gradients).
        positions: where to solve, shape (M, 3).
        velocities: K velocities per position, shape (M, K, 3), e.g. from
            :func:`neighbour_velocities`.
        weights: optional least-squares weights, shape (M, K); uniform if ``None``.
        chunk: positions per autograd call (memory ∝ chunk × K).

    Returns:
        Accelerations, shape (M, 3), float64, in units of velocity²/position.
    """
    positions = torch.as_tensor(positions, dtype=torch.float64)
    velocities = torch.as_tensor(velocities, dtype=torch.float64)
    m, k, _ = velocities.shape
    if positions.shape != (m, 3):
        raise ValueError(f"positions must have shape ({m}, 3), got {tuple(positions.shape)}")
    w = (
        torch.ones(m, k, dtype=torch.float64)
        if weights is None
        else torch.as_tensor(weights, dtype=torch.float64)
    )
    out = torch.empty(m, 3, dtype=torch.float64)
    for start in tqdm(range(0, m, chunk), desc="CBE solves", disable=not progress, leave=False):
        sl = slice(start, start + chunk)
        vel = velocities[sl]
        pos = positions[sl, None, :].expand_as(vel)
        gx, gv = phase_space_gradients(log_prob, pos.reshape(-1, 3), vel.reshape(-1, 3))
        gx, gv = gx.view(vel.shape), gv.view(vel.shape)
        ww = w[sl, :, None]
        lhs = torch.einsum("mki,mkj->mij", ww * gv, gv)
        rhs = -((ww * gv) * (vel * gx).sum(-1, keepdim=True)).sum(1)
        out[sl] = torch.linalg.solve(lhs, rhs)
    return out


def random_rotations(n: int, seed: int) -> np.ndarray:
    """``n`` rotation matrices, shape (n, 3, 3): the identity first, then uniform (Haar) draws."""
    if n < 1:
        raise ValueError(f"need at least one rotation, got {n}")
    rng = np.random.default_rng([seed, 31])
    drawn = Rotation.random(n - 1, random_state=rng).as_matrix() if n > 1 else np.empty((0, 3, 3))
    return np.concatenate([np.eye(3)[None], drawn.reshape(-1, 3, 3)])


def rotated_cbe_accelerations(
    log_prob: LogDensity,
    positions: torch.Tensor | np.ndarray,
    velocities: torch.Tensor | np.ndarray,
    rotations: np.ndarray,
    **solve_kwargs,
) -> torch.Tensor:
    r"""CBE accelerations of a spherical system solved in rotated frames, rotated back.

    A spherical steady state has :math:`f(Rx, Rv) = f(x, v)` for every rotation :math:`R`, so
    :math:`a(x) = R^\top a(Rx)`. A learned :math:`\ln f` keeps that symmetry only approximately:
    solving at :math:`Rx` with the velocities :math:`R v_k` and rotating the answer back gives
    another estimate of :math:`a(x)` whose flow error comes from a different part of phase space.
    Their mean over :math:`J` rotations averages those errors down, at :math:`J` times the cost
    and no retraining. Valid only where the system is spherical.

    Args:
        log_prob, positions, velocities: as :func:`cbe_accelerations` ((M, 3) and (M, K, 3)).
        rotations: (J, 3, 3) rotation matrices, e.g. :func:`random_rotations`.
        solve_kwargs: passed to :func:`cbe_accelerations`.

    Returns:
        The estimate of each frame in the original frame, shape (J, M, 3), float64; its mean
        over the first axis is the spherical average (frame 0 is unrotated where ``rotations[0]``
        is the identity).
    """
    positions = torch.as_tensor(positions, dtype=torch.float64)
    velocities = torch.as_tensor(velocities, dtype=torch.float64)
    out = []
    for rot in torch.as_tensor(np.asarray(rotations), dtype=torch.float64):
        # rows are vectors: x -> R x is x @ Rᵀ, and Rᵀ a back is a @ R
        acc = cbe_accelerations(log_prob, positions @ rot.T, velocities @ rot.T, **solve_kwargs)
        out.append(acc @ rot)
    return torch.stack(out)


def neighbour_velocities(
    data_positions: np.ndarray, data_velocities: np.ndarray, positions: np.ndarray, k: int
) -> np.ndarray:
    """Velocities of the ``k`` data stars nearest to each position: draws from ≈ p(v | x).

    Args:
        data_positions, data_velocities: the catalogue, shape (N, 3) each.
        positions: query positions, shape (M, 3).

    Returns:
        Array of shape (M, k, 3).
    """
    if k > len(data_positions):
        raise ValueError(f"k={k} exceeds the {len(data_positions)} stars in the catalogue")
    _, idx = cKDTree(data_positions).query(positions, k=k)
    return np.asarray(data_velocities)[np.asarray(idx).reshape(len(positions), k)]


def fractional_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|â - a| / |a| per row, for (M, 3) arrays."""
    return np.linalg.norm(np.asarray(estimate) - truth, axis=-1) / np.linalg.norm(truth, axis=-1)
