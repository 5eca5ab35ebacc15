"""`fit_posterior` on a user's simulator: budget-adapted defaults, priors, shapes, ensembles."""

import math

import numpy as np
import pytest
import torch

from astrogen import store
from astrogen.models.inn import (
    BudgetSettings,
    PosteriorEnsemble,
    PosteriorEstimator,
    fit_posterior,
    posterior_from_config,
)
from astrogen.train import train_likelihood


def _uniform_problem(n: int, seed: int = 0):
    """θ ~ U(-1, 1)², x = θ + 0.05 ε: a posterior with most of its mass on the prior's edge."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1, 1, (n, 2))
    return theta, theta + 0.05 * rng.standard_normal((n, 2))


@pytest.mark.parametrize("n", [1_000, 10_000, 100_000, 1_000_000])
def test_budget_settings_fit_the_number_of_simulations(n):
    b = BudgetSettings.for_budget(n)
    n_train = n - b.val_rows
    # the validation split never shrinks below 100 rows, and is at least 10 %
    assert b.val_rows >= max(100, 0.1 * n)
    # at least 25 optimiser steps per pass, in powers of two between 32 and 512
    assert 32 <= b.batch_size <= 512 and math.log2(b.batch_size).is_integer()
    assert b.eval_every == math.ceil(n_train / b.batch_size) and (
        b.eval_every >= 25 or b.batch_size == 32
    )
    assert 3_000 <= b.steps <= 30_000
    assert b.patience * b.eval_every >= 600
    assert (b.blocks, b.hidden) == (12, 128)
    assert (BudgetSettings.for_budget(300).blocks, BudgetSettings.for_budget(300).hidden) == (4, 64)
    with pytest.raises(ValueError, match="at least 20 simulations"):
        BudgetSettings.for_budget(10)


def test_every_training_row_is_used_in_every_pass():
    seen = []
    model = torch.nn.Linear(1, 1)

    def loss(xb):
        seen.append(xb[:, 0].clone())
        return (model(xb) ** 2).mean()

    rows = torch.arange(100.0)[:, None]
    train_likelihood(model, loss, [rows], [rows[:5]], steps=8, batch_size=32, drop_last=False,
                     progress=False)  # fmt: skip
    used = torch.cat(seen[:4])  # one pass: 32 + 32 + 32 + 4 rows (validation calls come later)
    assert sorted(used.tolist()) == list(range(100))


def test_small_budget_trains_in_steps_and_stops_on_its_validation_split():
    theta, x = _uniform_problem(1_000)
    est = fit_posterior(theta, x, prior=[(-1, 1), (-1, 1)], steps=400, progress=False)
    h = est.history
    b = BudgetSettings.for_budget(1_000)
    assert h.steps <= 400 and len(h.val) == math.ceil(h.steps / b.eval_every)
    assert est.config["blocks"] == b.blocks and est.config["hidden"] == b.hidden
    assert 0 < h.best_step <= h.steps


@pytest.mark.parametrize("support", ["reject", "logit"])
def test_a_box_prior_and_a_distribution_prior_keep_samples_in_the_support(support):
    theta, x = _uniform_problem(2_000, seed=1)
    edge = np.array([0.98, -0.98])  # the posterior's mass piles up on the box's corner
    for prior in (
        [(-1.0, 1.0), (-1.0, 1.0)],
        torch.distributions.Independent(
            torch.distributions.Uniform(-torch.ones(2), torch.ones(2)), 1
        ),
    ):
        est = fit_posterior(theta, x, prior=prior, support=support, steps=300, progress=False)
        # rejection leaves the flow unbounded; a logit builds the box into it
        logit_box = [list(b) if b else None for b in est.config["bounds"]]
        assert logit_box == ([[-1.0, 1.0]] * 2 if support == "logit" else [None, None])
        draws = est.sample(4_000, edge)
        assert draws.shape == (4_000, 2)
        assert (draws.abs() < 1).all()
        outside = torch.tensor([[1.5, 0.0], [0.5, -0.5]], dtype=torch.float64)
        logq = est.log_prob(outside, edge)
        assert logq[0] == -torch.inf and torch.isfinite(logq[1])
    # A prior without a box support is enforced by redrawing what it rejects.
    disc = _Disc()
    inside = np.linalg.norm(theta, axis=1) < 1
    est = fit_posterior(theta[inside], x[inside], prior=disc, steps=300, progress=False)
    draws = est.sample(3_000, edge / np.linalg.norm(edge))
    assert torch.isfinite(disc.log_prob(draws)).all()


def test_a_rejecting_box_prior_survives_a_checkpoint(tmp_path):
    """The box is in the config: a loaded estimator samples inside it with no prior reattached."""
    theta, x = _uniform_problem(1_000, seed=4)
    est = fit_posterior(theta, x, prior=[(-1, 1), None], steps=100, progress=False)
    assert est.config["support_box"] == [[-1.0, 1.0], None]
    path = tmp_path / "posterior.pt"
    store.save_state(path, est, {"k": 1}, est.config)
    loaded, _ = store.load_state(path, posterior_from_config, {"k": 1})
    draws = loaded.sample(2_000, np.array([0.99, 0.0]))
    assert (draws[:, 0].abs() < 1).all()
    torch.testing.assert_close(loaded.log_prob(theta[:5], x[:5]), est.log_prob(theta[:5], x[:5]))


class _Disc:
    """Uniform prior on the unit disc: only ``log_prob`` and ``sample``, no box support."""

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        inside = theta.norm(dim=-1) < 1
        return torch.where(inside, -math.log(math.pi), -torch.inf)

    def sample(self, shape=(1,)) -> torch.Tensor:
        r = torch.rand(*shape).sqrt()
        phi = 2 * math.pi * torch.rand(*shape)
        return torch.stack([r * phi.cos(), r * phi.sin()], -1).double()


@pytest.mark.bad_input
def test_theta_outside_the_prior_is_a_clear_error():
    theta, x = _uniform_problem(200)
    with pytest.raises(ValueError, match="column 1 has values outside its prior box"):
        fit_posterior(theta, x, prior=[(-1, 1), (0, 1)], steps=1, progress=False)
    with pytest.raises(ValueError, match="outside the prior's support"):
        fit_posterior(theta, x, prior=_Disc(), steps=1, progress=False)
    with pytest.raises(ValueError, match="either prior or bounds"):
        fit_posterior(theta, x, prior=[None, None], bounds=[None, None], steps=1, progress=False)
    with pytest.raises(ValueError, match="support must be 'reject' or 'logit'"):
        fit_posterior(theta, x, prior=[None, None], support="clip", steps=1, progress=False)


def test_a_single_observation_gives_n_by_d_in_every_form():
    theta, x = _uniform_problem(500, seed=2)
    est = fit_posterior(theta, x, steps=50, progress=False)
    assert est.sample(7, x[0]).shape == (7, 2)
    assert est.sample(7, x[:1]).shape == (7, 2)
    assert est.sample(7, x[:3]).shape == (3, 7, 2)
    assert est.sample(7, x[:1], batched=True).shape == (1, 7, 2)
    assert est.map_estimate(x[0]).shape == (2,) and est.map_estimate(x[:3]).shape == (3, 2)
    # one observation is broadcast against many parameter vectors
    one = est.log_prob(theta[:5], x[0])
    torch.testing.assert_close(one, est.log_prob(theta[:5], np.repeat(x[:1], 5, 0)))


def test_an_ensemble_is_a_mixture_that_round_trips_through_the_store(tmp_path):
    theta, x = _uniform_problem(800, seed=3)
    ens = fit_posterior(theta, x, prior=[(-1, 1), (-1, 1)], ensemble=3, steps=60, progress=False)
    assert isinstance(ens, PosteriorEnsemble) and len(ens.members) == 3
    assert len(ens.history) == 3
    members = torch.stack([m.log_prob(theta[:4], x[:4]) for m in ens.members])
    expected = torch.logsumexp(members, 0) - math.log(3)
    torch.testing.assert_close(ens.log_prob(theta[:4], x[:4]), expected)
    assert ens.sample(9, x[0]).shape == (9, 2) and ens.sample(9, x[:2]).shape == (2, 9, 2)
    path = tmp_path / "ensemble.pt"
    store.save_state(path, ens, {"k": 2}, ens.config)
    loaded, _ = store.load_state(path, posterior_from_config, {"k": 2})
    torch.testing.assert_close(loaded.log_prob(theta[:4], x[:4]), ens.log_prob(theta[:4], x[:4]))
    assert isinstance(posterior_from_config(ens.members[0].config), PosteriorEstimator)
    with pytest.raises(ValueError, match="ensemble must be at least 1"):
        fit_posterior(theta, x, ensemble=0, progress=False)
