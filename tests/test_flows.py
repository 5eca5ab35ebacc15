"""Bijectors, flows and fit_density: invertibility, exact log-determinants, normalisation."""

import numpy as np
import pytest
import torch
import zuko
from torch.autograd.functional import jacobian

from astrogen.models.bijectors import (
    Chain,
    RadialLogCompression,
    Standardize,
    TangentialVelocityCore,
    bijector_from_config,
)
from astrogen.models.flows import (
    FAMILIES,
    ContextMixture,
    DensityEnsemble,
    DensityEstimator,
    build_flow,
    fit_density,
)

torch.set_default_dtype(torch.float32)


def _bijectors():
    x = torch.randn(500, 6, dtype=torch.float64) * 3
    return [
        Standardize(6, x),
        RadialLogCompression(6, scale=2.0, start=0),
        RadialLogCompression(6, scale=0.5, start=3),
        RadialLogCompression(6, scale=1.5, inner_power=0.6),
        TangentialVelocityCore(6, power=0.5, scale=1.3),
        TangentialVelocityCore(6, power=0.2, scale=0.05),
        Chain(TangentialVelocityCore(6, 0.7, 2.0), RadialLogCompression(6, 1.5), Standardize(6, x)),
    ]


@pytest.mark.parametrize("bijector", _bijectors(), ids=lambda b: b.config()["name"])
def test_bijector_inverts_and_logdet_matches_autograd(bijector):
    x = torch.randn(5, 6, dtype=torch.float64) * 4
    y, ladj = bijector(x)
    torch.testing.assert_close(bijector.inverse(y), x, rtol=1e-10, atol=1e-10)
    for i in range(len(x)):
        jac = jacobian(lambda v: bijector(v[None])[0][0], x[i])
        assert torch.slogdet(jac).logabsdet.item() == pytest.approx(ladj[i].item(), rel=1e-9)
    rebuilt = bijector_from_config(bijector.config())
    rebuilt.load_state_dict(bijector.state_dict())
    torch.testing.assert_close(rebuilt(x)[0], y)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_flow_transform_inverts_and_logdet_matches_autograd(family):
    torch.manual_seed(0)
    flow = build_flow(family, 3, context=2, transforms=2, hidden=(16, 16))
    c = torch.randn(2)
    transform = flow(c).transform
    x = torch.randn(4, 3)
    z = transform(x)
    torch.testing.assert_close(transform.inv(z), x, rtol=1e-4, atol=1e-4)
    ladj = transform.log_abs_det_jacobian(x, z)
    for i in range(len(x)):
        jac = jacobian(lambda v: transform(v), x[i])
        assert torch.slogdet(jac).logabsdet.item() == pytest.approx(ladj[i].item(), abs=1e-4)


def test_estimator_density_is_normalised_in_original_units():
    # A 2-D estimator with a radial log map in front: ∫ q dx must be 1 in data units.
    torch.manual_seed(1)
    data = torch.randn(4000, 3, dtype=torch.float64) * 5.0 + 1.0
    est = fit_density(
        data,
        bijector=RadialLogCompression(3, 5.0),
        epochs=3,
        transforms=2,
        hidden=(32, 32),
        progress=False,
    )
    # Importance-sampling estimate of ∫ q using a broad Gaussian proposal.
    prop = torch.distributions.MultivariateNormal(
        torch.ones(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 100
    )
    xs = prop.sample((200_000,))
    with torch.no_grad():
        w = torch.exp(est.log_prob(xs) - prop.log_prob(xs))
    assert w.mean().item() == pytest.approx(1.0, abs=4 * (w.std() / np.sqrt(len(w))).item() + 0.01)


def test_fit_density_learns_a_correlated_gaussian():
    torch.manual_seed(2)
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    truth = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov)
    x = truth.sample((20_000,)) * 1e5 + 3e5  # far from unit scale on purpose
    est = fit_density(x, epochs=15, batch_size=512, lr=3e-3, progress=False, seed=3)
    xt = truth.sample((20_000,))
    with torch.no_grad():
        kl = (truth.log_prob(xt) - 2 * np.log(1e5) - est.log_prob(xt * 1e5 + 3e5)).mean().item()
    assert kl + 0.01 >= 0 and kl < 0.02
    assert est.history.best_epoch >= 0 and len(est.history.val) > 0


def test_conditional_estimator_roundtrip_through_config_and_state_dict():
    torch.manual_seed(4)
    c = torch.randn(3000, 1, dtype=torch.float64)
    x = c + 0.1 * torch.randn(3000, 2, dtype=torch.float64)
    est = fit_density(
        x,
        c,
        family="nsf",
        epochs=2,
        transforms=2,
        hidden=(16, 16),
        flow_kwargs={"randperm": True},
        progress=False,
    )
    clone = DensityEstimator.from_config(est.config)
    clone.load_state_dict(est.state_dict())
    xt, ct = x[:50], c[:50]
    torch.testing.assert_close(clone.log_prob(xt, ct), est.log_prob(xt, ct))
    assert est.sample(7, ct[:3]).shape == (7, 3, 2)
    with pytest.raises(ValueError, match="needs a context"):
        est.log_prob(xt)


def test_ensemble_is_the_mixture_of_its_members():
    torch.manual_seed(5)
    x = torch.randn(2000, 2, dtype=torch.float64)
    members = [
        fit_density(x, epochs=1, transforms=1, hidden=(8,), seed=s, progress=False)
        for s in range(3)
    ]
    ens = DensityEnsemble(members)
    xt = torch.randn(10, 2, dtype=torch.float64)
    mix = torch.log(torch.stack([m.log_prob(xt).exp() for m in members]).mean(0))
    torch.testing.assert_close(ens.log_prob(xt), mix)
    assert ens.sample(11).shape == (11, 2)


def test_context_mixture_is_the_mean_density_over_its_contexts():
    torch.manual_seed(6)
    x, c = torch.randn(2000, 2, dtype=torch.float64), torch.randn(2000, 3, dtype=torch.float64)
    est = fit_density(x, c, epochs=1, transforms=1, hidden=(8,), seed=0, progress=False)
    views = torch.randn(4, 3, dtype=torch.float64)
    mix = ContextMixture(est, torch.cat([views, views[:1]]))  # a repeated view weighs twice
    xt = torch.randn(10, 2, dtype=torch.float64)
    densities = torch.stack([est.log_prob(xt, v.expand(10, 3)).exp() for v in views])
    expected = (densities.sum(0) + densities[0]) / 5
    torch.testing.assert_close(mix.log_prob(xt), expected.log())
    assert mix.sample(13).shape == (13, 2)
    one = ContextMixture(est, views[:1])  # one view: exactly the estimator at that context
    torch.manual_seed(1)
    a = one.sample(5)
    torch.manual_seed(1)
    torch.testing.assert_close(a, est.sample(5, views[0]), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"\(K, C\)"):
        ContextMixture(est, views[0])


def test_fit_density_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        fit_density(torch.tensor([[0.0, float("nan")]] * 10), progress=False)
    with pytest.raises(ValueError, match="unknown flow family"):
        build_flow("glow", 2)


def test_same_seed_gives_identical_estimators():
    x = torch.randn(3000, 3, dtype=torch.float64)
    kwargs = {"epochs": 2, "transforms": 2, "hidden": (16, 16), "progress": False, "seed": 7}
    a, b = fit_density(x, **kwargs), fit_density(x, **kwargs)
    assert a.history.val == b.history.val
    torch.testing.assert_close(a.log_prob(x[:100]), b.log_prob(x[:100]), rtol=0, atol=0)


def test_galacticflow_spline_coupling_is_invertible_with_exact_log_det():
    torch.manual_seed(0)
    flow = build_flow("galacticflow", 10, 4, transforms=3, hidden=(32, 32))
    for p in flow.parameters():  # move away from the identity initialisation of the mixing
        p.data += 0.1 * torch.randn_like(p)
    context, x = torch.randn(5, 4), torch.randn(5, 10)
    transform = flow(context).transform
    y = transform(x)
    torch.testing.assert_close(transform.inv(y), x, atol=1e-5, rtol=0)
    jacobians = torch.stack([
        torch.autograd.functional.jacobian(lambda v, i=i: flow(context[i : i + 1]).transform(v[None])[0], x[i])
        for i in range(5)
    ])  # fmt: skip
    torch.testing.assert_close(
        transform.log_abs_det_jacobian(x, y), torch.linalg.slogdet(jacobians)[1], atol=1e-4, rtol=0
    )
    mixing = [m for m in flow.modules() if isinstance(m, zuko.flows.UnconditionalTransform)]
    assert len(mixing) == 2  # a learned linear map between consecutive couplings


def test_explicit_validation_set_is_used_for_early_stopping():
    torch.manual_seed(2)
    x, c = torch.randn(600, 2), torch.randn(600, 1)
    x_val, c_val = torch.randn(100, 2) + 3.0, torch.randn(100, 1)  # shifted: its NLL is worse
    est = fit_density(x, c, validation=(x_val, c_val), epochs=2, transforms=1, hidden=(8,),
                      progress=False)  # fmt: skip
    assert len(est.history.val) == 2
    nll_val = -est.log_prob(x_val.double(), c_val.double()).mean().item()
    nll_train = -est.log_prob(x.double(), c.double()).mean().item()
    assert nll_val > nll_train
