"""The fast inverses used for sampling agree with zuko's own inverses of the same flows."""

import pytest
import torch
import zuko
from zuko.transforms import SOSPolynomialTransform

from astrogen.flow_inverse import IncrementalInverse, flow_inverse, sos_polynomial_inverse
from astrogen.flows import build_flow


def _perturbed(family: str, features: int, context: int, seed: int = 0) -> zuko.flows.Flow:
    torch.manual_seed(seed)
    flow = build_flow(family, features, context, transforms=3, hidden=(32, 32))
    with torch.no_grad():  # away from the identity, so every conditioner output matters
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("family", ["sospf", "maf", "nsf", "galacticflow"])
@pytest.mark.parametrize("context_kind", ["none", "shared", "per_row"])
def test_flow_inverse_matches_zuko(family, context_kind):
    features, n_context = 5, (0 if context_kind == "none" else 3)
    flow = _perturbed(family, features, n_context)
    c = {"none": None, "shared": torch.randn(3), "per_row": torch.randn(400, 3)}[context_kind]
    dist = flow(c)
    z = torch.randn(400, features)
    with torch.no_grad():
        reference = dist.transform.inv(z)
        x = flow_inverse(flow, z, c, chunk=150)
        roundtrip, reference_roundtrip = dist.transform(x), dist.transform(reference)
    torch.testing.assert_close(x, reference, rtol=0, atol=5e-4)
    # SOSPF is invertible on [-10, 10] only: rows that zuko cannot invert either are clamped
    invertible = (reference_roundtrip - z).abs().amax(dim=1) < 5e-4
    assert invertible.float().mean() > 0.9
    torch.testing.assert_close(roundtrip[invertible], z[invertible], rtol=0, atol=5e-4)


def test_flow_inverse_does_not_depend_on_workers_or_chunks():
    flow = _perturbed("sospf", 6, 2, seed=1)
    z, c = torch.randn(3000, 6), torch.randn(2)
    with torch.no_grad():
        one = flow_inverse(flow, z, c, chunk=700, workers=1)
        two = flow_inverse(flow, z, c, chunk=700, workers=2)
    assert torch.equal(one, two)
    assert torch.get_num_threads() >= 1


def test_sos_inverse_solves_zuko_polynomial_and_pins_out_of_range_targets():
    torch.manual_seed(2)
    a = 0.6 * torch.randn(4000, 3, 5)
    shift = 0.3 * torch.randn(4000)
    transform = SOSPolynomialTransform(a)
    x_true = 9.5 * (2 * torch.rand(4000) - 1)
    y = transform(x_true) + shift
    x = sos_polynomial_inverse(a.permute(1, 2, 0), shift, y)
    torch.testing.assert_close(x, x_true, rtol=0, atol=2e-4)
    edge = transform(torch.full((4000,), 10.0)) + shift
    beyond = sos_polynomial_inverse(a.permute(1, 2, 0), shift, edge + 5.0)
    assert torch.all(beyond == 10.0)
    # zuko's bisection clamps the same way
    torch.testing.assert_close(transform.inv(edge + 5.0 - shift), beyond, rtol=0, atol=1e-5)


def test_incremental_inverse_rejects_hypernetworks_it_cannot_split():
    flow = zuko.flows.MAF(4, 0, transforms=1, hidden_features=(16, 16), residual=True)
    with pytest.raises(ValueError, match="hyper-network"):
        IncrementalInverse(flow.transform.transforms[0])


def test_flow_inverse_falls_back_to_zuko_for_residual_hypernetworks():
    torch.manual_seed(3)
    flow = zuko.flows.MAF(4, 2, transforms=2, hidden_features=(16, 16), residual=True)
    z, c = torch.randn(50, 4), torch.randn(2)
    with torch.no_grad():
        torch.testing.assert_close(flow_inverse(flow, z, c), flow(c).transform.inv(z))
