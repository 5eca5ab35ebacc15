"""The shared training loop: early stopping and NaN handling."""

import pytest
import torch

from astrogen.train import NonFiniteLossError, train_likelihood


def _gaussian_problem():
    torch.manual_seed(0)
    x = torch.randn(2000, 1) * 2 + 1
    model = torch.nn.Module()
    model.mu = torch.nn.Parameter(torch.zeros(1))
    model.log_sigma = torch.nn.Parameter(torch.zeros(1))

    def nll(xb):
        return -torch.distributions.Normal(model.mu, model.log_sigma.exp()).log_prob(xb).mean()

    return model, nll, x


def test_training_recovers_a_gaussian_and_reports_history():
    model, nll, x = _gaussian_problem()
    h = train_likelihood(
        model, nll, [x[:1500]], [x[1500:]], epochs=60, lr=0.05, batch_size=100, progress=False
    )
    assert model.mu.item() == pytest.approx(1.0, abs=0.15)
    assert model.log_sigma.exp().item() == pytest.approx(2.0, abs=0.15)
    assert len(h.train) == len(h.val) and h.best_val == min(h.val)


def test_non_finite_loss_stops_and_restores_best_state(capsys):
    model, nll, x = _gaussian_problem()
    calls = {"n": 0}

    def poisoned(xb):
        calls["n"] += 1
        loss = nll(xb)
        return loss * float("nan") if calls["n"] > 40 else loss

    h = train_likelihood(
        model, poisoned, [x[:1000]], [x[1000:1100]], epochs=50, batch_size=100, progress=False
    )
    assert h.stopped == "non_finite"
    assert torch.isfinite(model.mu) and torch.isfinite(model.log_sigma)
    assert "restoring the best state" in capsys.readouterr().out


def test_non_finite_loss_before_any_epoch_raises():
    model, nll, x = _gaussian_problem()
    with pytest.raises(NonFiniteLossError, match="loss became nan"):
        train_likelihood(
            model, lambda xb: nll(xb) * float("nan"), [x], [x], epochs=2, progress=False
        )
