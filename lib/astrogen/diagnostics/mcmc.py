r"""Reference posteriors: a vectorised differential-evolution ensemble sampler and its diagnostics.

Many independent problems (one per held-out object) run at once: walkers have shape
``(P, W, D)`` — P problems, W walkers, D parameters — and ``log_prob`` maps ``(P, W, D) → (P, W)``.

**Move.** Red-blue differential evolution (ter Braak 2006; the split makes the parallel update
valid, as in emcee): each half of the walkers proposes
:math:`u' = u + γ (u_a - u_b) + ε`, with a, b two distinct walkers of the other half,
γ = 2.38/√(2D) (every 10th step γ = 1, which jumps between modes) and ε ~ N(0, 10⁻⁶ I); the
proposal is symmetric, so it is accepted with probability min(1, p(u')/p(u)). Every 3rd step
is instead an independence move from a kernel density of the other half,
:math:`q(u') = \frac1m\sum_b \mathcal N(u'; u_b, h^2 \,\mathrm{diag}\,s^2)` (s² the other half's
variances, h = 0.5), accepted with probability min(1, p(u') q(u) / (p(u) q(u'))): walkers then
move between separated modes in proportion to their mass.

**Start.** Walkers are drawn by sampling–importance–resampling from the prior, so they start
spread over every posterior mode in proportion to its mass, not in one of them.

**Diagnostics.** Split-R̂ (Gelman et al.) over walkers and the effective sample size from the
walker-averaged integrated autocorrelation time (Sokal's automatic window, c = 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

LogProb = Callable[[np.ndarray], np.ndarray]


@dataclass
class EnsembleChains:
    """Kept states ``samples`` (S, P, W, D) and the acceptance fraction per problem (P,)."""

    samples: np.ndarray
    acceptance: np.ndarray

    def flat(self) -> np.ndarray:
        """All kept states per problem, shape (P, S·W, D)."""
        s, p, w, d = self.samples.shape
        return np.moveaxis(self.samples, 1, 0).reshape(p, s * w, d)


def importance_resample(
    log_likelihood: LogProb,
    prior_draws: np.ndarray,
    n_keep: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Resample ``n_keep`` of the prior draws (P, N, D) per problem with weights ∝ likelihood."""
    logw = log_likelihood(prior_draws)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    cdf = np.cumsum(w, axis=1)
    picks = (cdf[:, None, :] < rng.random((len(w), n_keep, 1))).sum(-1)
    picks = np.minimum(picks, prior_draws.shape[1] - 1)
    return np.take_along_axis(prior_draws, picks[..., None], axis=1)


def sample_ensemble(
    log_prob: LogProb,
    init: np.ndarray,
    n_steps: int,
    rng: np.random.Generator,
    *,
    burn: int = 0,
    thin: int = 1,
    progress: bool = True,
) -> EnsembleChains:
    """Run the red-blue DE sampler from ``init`` (P, W, D), W even and ≥ 6.

    Returns the states after ``burn`` steps, every ``thin``-th step.
    """
    u = np.array(init, dtype=float)
    p, w, d = u.shape
    if w % 2 or w < 6:
        raise ValueError(f"need an even number of walkers ≥ 6, got {w}")
    lp = log_prob(u)
    halves = (np.arange(w // 2), np.arange(w // 2, w))
    accepted = np.zeros(p)
    kept = []
    gamma0 = 2.38 / np.sqrt(2 * d)
    for step in tqdm(
        range(burn + n_steps), desc="MCMC", disable=not progress, leave=False, mininterval=2
    ):
        gamma = 1.0 if step % 10 == 9 else gamma0
        for active, other in (halves, halves[::-1]):
            m = len(active)
            if step % 3 == 2:
                proposal, log_q_ratio = _kde_proposal(u[:, active], u[:, other], rng)
            else:
                a = rng.integers(0, m, (p, m))
                b = (a + rng.integers(1, m, (p, m))) % m  # distinct from a
                ua = np.take_along_axis(u[:, other], a[..., None], axis=1)
                ub = np.take_along_axis(u[:, other], b[..., None], axis=1)
                noise = 1e-3 * rng.standard_normal((p, m, d))
                proposal, log_q_ratio = u[:, active] + gamma * (ua - ub) + noise, 0.0
            lp_new = log_prob(proposal)
            accept = np.log(rng.random((p, m))) < lp_new - lp[:, active] + log_q_ratio
            u[:, active] = np.where(accept[..., None], proposal, u[:, active])
            lp[:, active] = np.where(accept, lp_new, lp[:, active])
            if step >= burn:
                accepted += accept.sum(1)
        if step >= burn and (step - burn) % thin == 0:
            kept.append(u.copy())
    return EnsembleChains(np.stack(kept), accepted / max(n_steps * w, 1))


def _kde_proposal(
    current: np.ndarray, other: np.ndarray, rng: np.random.Generator, h: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Independence proposal from a Gaussian KDE of ``other`` (P, m, D); returns the proposal and
    ln q(current) - ln q(proposal) for the acceptance ratio."""
    p, m, d = current.shape
    scale = h * other.std(axis=1, keepdims=True) + 1e-12  # (P, 1, D)
    pick = rng.integers(0, other.shape[1], (p, m))
    centres = np.take_along_axis(other, pick[..., None], axis=1)
    proposal = centres + scale * rng.standard_normal((p, m, d))

    def log_q(points: np.ndarray) -> np.ndarray:
        z = (points[:, :, None, :] - other[:, None, :, :]) / scale[:, None]  # (P, m, m_o, D)
        log_k = -0.5 * np.sum(z**2, axis=-1)
        top = log_k.max(axis=-1, keepdims=True)
        return (top + np.log(np.exp(log_k - top).sum(-1, keepdims=True)))[..., 0]

    return proposal, log_q(current) - log_q(proposal)


def split_rhat(chains: np.ndarray) -> np.ndarray:
    r"""Split-R̂ of chains (S, P, W, D) per problem and parameter → (P, D).

    Each walker's history is cut in two halves; with n draws per half-chain,
    :math:`\hat R = \sqrt{((n-1)/n\,W + B/n) / W}` from within- (W) and between-chain (B/n)
    variances. Values near 1 (≤ 1.01–1.05) indicate converged chains.
    """
    s = chains.shape[0] // 2
    halves = np.concatenate([chains[:s], chains[s : 2 * s]], axis=2)  # (s, P, 2W, D)
    within = halves.var(axis=0, ddof=1).mean(axis=1)
    between = s * halves.mean(axis=0).var(axis=1, ddof=1)
    return np.sqrt(((s - 1) / s * within + between / s) / within)


def effective_sample_size(chains: np.ndarray, c: float = 5.0) -> np.ndarray:
    r"""ESS = S·W / τ per problem and parameter → (P, D), for chains (S, P, W, D).

    τ = 1 + 2 Σ_{t≤M} ρ(t), with ρ the walker-averaged autocorrelation function (computed by
    FFT) and M the smallest lag with M ≥ c τ(M).
    """
    s = chains.shape[0]
    x = chains - chains.mean(axis=0, keepdims=True)
    n_fft = 2 ** int(np.ceil(np.log2(2 * s)))
    f = np.fft.rfft(x, n=n_fft, axis=0)
    acf = np.fft.irfft(f * np.conj(f), axis=0)[:s].mean(axis=2)  # (s, P, D)
    acf /= acf[:1]
    taus = 2 * np.cumsum(acf, axis=0) - 1
    lags = np.arange(s)[:, None, None]
    window = np.argmax(lags >= c * taus, axis=0)
    window = np.where(np.any(lags >= c * taus, axis=0), window, s - 1)
    tau = np.take_along_axis(taus, window[None], axis=0)[0]
    return s * chains.shape[2] / np.maximum(tau, 1.0)
