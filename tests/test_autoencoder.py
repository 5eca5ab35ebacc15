"""Image normalisations of the autoencoder: invertible, colours weighted, stored configs rebuild."""

import json

import pytest
import torch

from astrogen.models.autoencoder import (
    Autoencoder,
    LogImageNorm,
    LuminosityColourNorm,
    fit_autoencoder,
    image_norm_from_config,
)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(40, 3, 16, 16, generator=g) * torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1, 1)


@pytest.mark.parametrize("weight", [1.0, 3.0])
def test_luminosity_colour_norm_inverts_and_standardises(images, weight):
    norm = LuminosityColourNorm.fit(images, weight)
    out = norm(images)
    torch.testing.assert_close(norm.inverse(out), images, atol=1e-5, rtol=1e-5)
    std = out.std(dim=(0, 2, 3))
    # luminosity standardised to unit variance, each colour to the weight
    torch.testing.assert_close(std, torch.tensor([1.0, weight, weight]), atol=1e-4, rtol=1e-4)


def test_colour_channels_are_band_differences(images):
    norm = LuminosityColourNorm([0.0] * 3, [1.0] * 3, 1.0)
    logs = torch.log1p(images)
    out = norm(images)
    torch.testing.assert_close(out[:, 0], logs.mean(1))
    torch.testing.assert_close(out[:, 1], logs[:, 0] - logs[:, 1])
    torch.testing.assert_close(out[:, 2], logs[:, 1] - logs[:, 2])


@pytest.mark.parametrize("norm_cls", ["log", "colour"])
def test_norm_config_round_trip(images, norm_cls):
    norm = LogImageNorm.fit(images) if norm_cls == "log" else LuminosityColourNorm.fit(images, 2.0)
    rebuilt = image_norm_from_config(norm.config())
    torch.testing.assert_close(rebuilt(images), norm(images))


def test_autoencoder_with_colour_norm_reloads(images):
    ae = fit_autoencoder(images, latent=4, width=4, colour_weight=3.0, epochs=1, progress=False)
    # the cache stores the config as JSON: it alone must rebuild the normalisation
    again = Autoencoder(json.loads(json.dumps(ae.config)))
    torch.testing.assert_close(again.norm(images), ae.norm(images))
    again.load_state_dict(ae.state_dict())
    torch.testing.assert_close(again.embed(images), ae.embed(images))
    torch.testing.assert_close(ae.to_image(ae.norm(images).double()), images, atol=1e-5, rtol=1e-5)
