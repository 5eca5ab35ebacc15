"""GANomaly: shapes, batch-independent scores, discriminator re-initialisation, score scale."""

import numpy as np
import pytest
import torch

from astrogen.models import ganomaly
from astrogen.models.ganomaly import GANomaly, fit_ganomaly, percentile_scores
from astrogen.studies import anomaly as study


def test_shapes_and_scores_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    model = GANomaly({"width": 8, "latent": 16})
    x = torch.rand(10, 3, 64, 64) * 2 - 1
    x_hat, z, z_hat = model(x)
    assert x_hat.shape == x.shape and z.shape == z_hat.shape == (10, 16)
    assert x_hat.abs().max() <= 1
    alone = model.score(x[:1])
    in_batch = model.score(x)[:1]
    mixed = model.score(torch.cat([x[:1], 5 * x[1:]]))[:1]
    np.testing.assert_allclose(alone, in_batch, rtol=1e-5)
    np.testing.assert_allclose(alone, mixed, rtol=1e-5)


def test_training_keeps_the_best_validation_state_and_reinitialises_a_collapsed_critic(monkeypatch):
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (48, 3, 64, 64)).astype(np.float32)
    val = rng.uniform(-1, 1, (16, 3, 64, 64)).astype(np.float32)
    # Any discriminator loss counts as "pinned": the collapse guard must fire every 2 steps.
    monkeypatch.setattr(ganomaly, "COLLAPSE_LOSS", np.inf)
    monkeypatch.setattr(ganomaly, "COLLAPSE_STEPS", 2)
    model = fit_ganomaly(train, val, width=8, latent=16, epochs=2, batch_size=16, progress=False)
    h = model.history
    assert h["reinit_steps"] == [2, 4, 6]
    assert h["best_epoch"] == int(np.argmin(h["val"])) and len(h["val"]) == 2
    assert np.isfinite(model.score(val)).all()


def test_percentile_scores_are_fixed_by_the_reference_set():
    reference = np.random.default_rng(1).normal(size=10_000)
    same = percentile_scores(np.random.default_rng(2).normal(size=10_000), reference)
    assert abs(same.mean() - 0.5) < 0.01
    shifted = percentile_scores(np.random.default_rng(3).normal(1.0, 1.0, 10_000), reference)
    assert shifted.mean() > 0.7
    np.testing.assert_array_equal(percentile_scores([-1e9, 1e9], reference), [0.0, 1.0])


def test_generator_loss_terms_on_known_inputs(monkeypatch):
    torch.manual_seed(0)
    model = GANomaly({"width": 8, "latent": 16}).eval()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    z = torch.zeros(4, 16)
    # x̂ = x + 0.1 everywhere and ẑ = z + 0.2: contextual L1 = 0.1, latent L2 = 0.04
    monkeypatch.setattr(model, "forward", lambda inp: (inp + 0.1, z, z + 0.2))
    contextual, _ = ganomaly.generator_loss(model, x, weights=(0.0, 1.0, 0.0))
    latent, _ = ganomaly.generator_loss(model, x, weights=(0.0, 0.0, 1.0))
    assert contextual.item() == pytest.approx(0.1, rel=1e-5)
    assert latent.item() == pytest.approx(0.04, rel=1e-5)
    # feature matching: zero when the reconstruction is the input, positive otherwise
    monkeypatch.setattr(model, "forward", lambda inp: (inp, z, z))
    assert ganomaly.generator_loss(model, x, weights=(1.0, 0.0, 0.0))[0].item() == 0.0
    monkeypatch.setattr(model, "forward", lambda inp: (-inp, z, z))
    assert ganomaly.generator_loss(model, x, weights=(1.0, 0.0, 0.0))[0].item() > 0.0
    total, _ = ganomaly.generator_loss(model, x)
    parts = [ganomaly.generator_loss(model, x, w)[0].item() for w in ((1, 0, 0), (0, 1, 0))]
    assert total.item() == pytest.approx(parts[0] + 50 * parts[1], rel=1e-5)


def test_referee_separates_what_differs_and_not_what_is_alike():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.3, (4, 200, 3, 64, 64)).astype(np.float32)
    brighter = noise[1] + 0.3  # a shift of one noise σ in every pixel: obvious to a CNN
    model = ganomaly.fit_referee(noise[0][:150], brighter[:150], width=4, epochs=2, progress=False)
    assert study.auroc(model.logits(noise[0][150:]), model.logits(brighter[150:])) > 0.99
    logits = model.logits(noise[2], batch=256)
    np.testing.assert_allclose(model.logits(noise[2], batch=7), logits, rtol=1e-5, atol=1e-5)
    alike = ganomaly.fit_referee(noise[2][:150], noise[3][:150], width=4, epochs=2, progress=False)
    # 50 + 50 held-out images: the AUROC's standard error is ≈ 0.058, the bound is 3.4 of it
    assert abs(study.auroc(alike.logits(noise[2][150:]), alike.logits(noise[3][150:])) - 0.5) < 0.2
