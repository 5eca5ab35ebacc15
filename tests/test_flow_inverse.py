"""The fast inverses used for sampling agree with zuko's own inverses of the same flows."""

import pytest
import torch
import zuko
from zuko.transforms import MonotonicRQSTransform, SOSPolynomialTransform

from astrogen.models.flow_inverse import (
    IncrementalInverse,
    flow_inverse,
    inverse_steps,
    rqs_inverse,
    sos_polynomial_inverse,
)
from astrogen.models.flows import build_flow


def _perturbed(family: str, features: int, context: int, seed: int = 0, **kw) -> zuko.flows.Flow:
    torch.manual_seed(seed)
    flow = build_flow(family, features, context, transforms=3, hidden=(32, 32), **kw)
    with torch.no_grad():  # away from the identity, so every conditioner output matters
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return flow


CASES = [
    ("sospf", {}),
    ("maf", {}),
    ("nsf", {}),
    ("galacticflow", {}),
    ("maf", {"activation": "elu"}),
]


@pytest.mark.parametrize(("family", "options"), CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("context_kind", ["none", "shared", "single_row", "per_row"])
def test_flow_inverse_matches_zuko(family, options, context_kind):
    features, n_context = 5, (0 if context_kind == "none" else 3)
    flow = _perturbed(family, features, n_context, **options)
    c = {"none": None, "shared": torch.randn(3), "single_row": torch.randn(1, 3),
         "per_row": torch.randn(400, 3)}[context_kind]  # fmt: skip
    autoregressive = [t for t in flow.transform.transforms if isinstance(t, zuko.flows.MaskedAutoregressiveTransform)]  # fmt: skip
    assert sum(isinstance(s, IncrementalInverse) for s in inverse_steps(flow)) == len(
        autoregressive
    )
    dist = flow(c)
    z = torch.randn(400, features)
    with torch.no_grad():
        reference = dist.transform.inv(z)
        x = flow_inverse(flow, z, c, chunk=150)
        roundtrip, reference_roundtrip = dist.transform(x), dist.transform(reference)
    atol = 1e-4 if family == "sospf" else 2e-5  # zuko bisects float32 quadratures for SOSPF
    torch.testing.assert_close(x, reference, rtol=0, atol=atol)
    # SOSPF is invertible on [-10, 10] only: rows that zuko cannot invert either are clamped
    invertible = (reference_roundtrip - z).abs().amax(dim=1) < 5e-4
    assert invertible.float().mean() > 0.9
    torch.testing.assert_close(roundtrip[invertible], z[invertible], rtol=0, atol=5e-4)


def test_flow_inverse_does_not_depend_on_workers_or_chunks_and_restores_threads():
    flow = _perturbed("sospf", 6, 2, seed=1)
    z, c = torch.randn(3000, 6), torch.randn(2)
    threads = torch.get_num_threads()
    with torch.no_grad():
        one = flow_inverse(flow, z, c, chunk=700, workers=1)
        two = flow_inverse(flow, z, c, chunk=700, workers=2)
        other_chunks = flow_inverse(flow, z, c, chunk=1100, workers=2)
    assert torch.equal(one, two)
    torch.testing.assert_close(one, other_chunks, rtol=0, atol=1e-6)
    assert torch.get_num_threads() == threads


def test_flow_inverse_checks_the_context():
    flow = _perturbed("maf", 4, 2)
    z = torch.randn(10, 4)
    with pytest.raises(ValueError, match="context of 2 features"):
        flow_inverse(flow, z, None)
    with pytest.raises(ValueError, match="3 rows for 10 points"):
        flow_inverse(flow, z, torch.randn(3, 2))


def test_inverse_steps_follow_weight_changes():
    flow = _perturbed("maf", 4, 0)
    z = torch.randn(50, 4)
    before = flow_inverse(flow, z, None)
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(1.1)
        torch.testing.assert_close(flow_inverse(flow, z, None), flow(None).transform.inv(z))
    assert not torch.allclose(before, flow_inverse(flow, z, None))


def test_sos_inverse_solves_zuko_polynomial_and_pins_out_of_range_targets():
    torch.manual_seed(2)
    n = 20_000  # beyond the size at which unconverged elements are compacted
    a = 0.6 * torch.randn(n, 3, 5)
    shift = 0.3 * torch.randn(n)
    transform = SOSPolynomialTransform(a)
    x_true = 9.5 * (2 * torch.rand(n) - 1)
    y = transform(x_true) + shift
    coefficients = a.permute(1, 2, 0)
    x = sos_polynomial_inverse(coefficients, shift, y)
    torch.testing.assert_close(x, x_true, rtol=0, atol=2e-4)
    for bound in (10.0, -10.0):
        edge = transform(torch.full((n,), bound)) + shift
        beyond = edge + 5.0 * (1 if bound > 0 else -1)
        pinned = sos_polynomial_inverse(coefficients, shift, beyond)
        assert torch.all(pinned == bound)
        # zuko's bisection clamps the same way
        torch.testing.assert_close(transform.inv(beyond - shift), pinned, rtol=0, atol=1e-5)
    nan = sos_polynomial_inverse(coefficients[..., :3], shift[:3], torch.tensor([0.0, float("nan"), 1.0]))  # fmt: skip
    assert nan.isnan().tolist() == [False, True, False]


def _prelu() -> torch.nn.Module:
    return torch.nn.PReLU(16)  # one slope per unit: not element-wise


@pytest.mark.parametrize(
    "flow",
    [
        zuko.flows.MAF(4, 2, transforms=2, hidden_features=(16, 16), residual=True),
        zuko.flows.MAF(4, 2, transforms=2, hidden_features=(16, 16), activation=_prelu),
        zuko.flows.MAF(4, 2, transforms=1, adjacency=torch.tril(torch.ones(4, 4, dtype=bool))),
        zuko.flows.NICE(4, 2, transforms=2),
    ],
    ids=["residual", "prelu", "adjacency", "nice"],
)
def test_flow_inverse_falls_back_to_zuko_where_it_cannot_split(flow):
    torch.manual_seed(3)
    z, c = torch.randn(50, 4), torch.randn(2)
    assert not any(isinstance(s, IncrementalInverse) for s in inverse_steps(flow))
    with torch.no_grad():
        torch.testing.assert_close(flow_inverse(flow, z, c), flow(c).transform.inv(z))


def test_rqs_inverse_matches_zuko_spline_inside_and_outside_its_bound():
    torch.manual_seed(4)
    n, bins = 5000, 8
    # float64, so the comparison tests the algebra: in float32 the two inverses differ by up to
    # 1.3e-4 in steep bins on one CPU and less on another (rounding, not the method)
    w, h, d = (torch.randn(n, k, dtype=torch.float64) for k in (bins, bins, bins - 1))
    spline = MonotonicRQSTransform(w, h, d)
    x_true = 6.0 * (2 * torch.rand(n, dtype=torch.float64) - 1)  # beyond ±5: the identity
    y = spline(x_true)
    x = rqs_inverse(w.T, h.T, d.T, y)
    torch.testing.assert_close(x, spline.inv(y), rtol=0, atol=1e-9)
    torch.testing.assert_close(x, x_true, rtol=0, atol=1e-9)
    torch.testing.assert_close(spline(x), y, rtol=0, atol=1e-9)
