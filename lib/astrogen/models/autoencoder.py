r"""Convolutional image encoders and a conv autoencoder.

Images arrive as counts or fluxes of shape (N, C, H, W) with H = W a power of two ≥ 16. They are
first compressed, :math:`\tilde I = (\ln(1 + I) - m)/s` with m, s fixed from the training images,
so bright cores and faint substructure both matter to the loss; multi-band images may instead be
split into luminosity and colour channels (:class:`LuminosityColourNorm`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from astrogen.train import TrainHistory, split_indices, train_likelihood


def log_flux(images: torch.Tensor) -> torch.Tensor:
    r""":math:`\ln(1 + \max(I, 0))`, float32, same shape."""
    return torch.log1p(images.float().clamp_min(0))


class LogImageNorm(nn.Module):
    r""":math:`\tilde I = (\ln(1 + \max(I, 0)) - m)/s`; ``m``, ``s`` are buffers (set on fit)."""

    def __init__(self, shift: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    @classmethod
    def fit(cls, images: torch.Tensor) -> LogImageNorm:
        logged = log_flux(images)
        return cls(logged.mean().item(), logged.std().item())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (log_flux(images) - self.shift) / self.scale

    def inverse(self, normalised: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) back from the normalised space."""
        return torch.expm1(normalised * self.scale + self.shift)

    def config(self) -> list[float]:
        return [self.shift.item(), self.scale.item()]


class LuminosityColourNorm(nn.Module):
    r"""Log-fluxes :math:`L_b = \ln(1 + \max(I_b, 0))` of C bands → C channels: the luminosity
    :math:`\bar L = \frac1C\sum_b L_b` and the C − 1 colours :math:`L_b - L_{b+1}`, each
    standardised with the training images' mean and standard deviation, the colours then
    multiplied by ``colour_weight`` w.

    In a plain log-flux MSE the colour structure of a galaxy (age and metallicity gradients) is a
    small fraction of the pixel variance, which the bands' shared light profile dominates; an
    autoencoder then spends its latent on shape and orientation and keeps little colour. Giving
    colours their own standardised channels, weighted by w, makes the loss pay for them.

    Shapes: images (N, C, H, W) ↔ normalised (N, C, H, W). ``shift``, ``scale``: (C,), the
    channels' training mean and standard deviation (the ``scale`` buffer holds them divided by
    the weights; :meth:`config` returns the unweighted values).
    """

    def __init__(self, shift: list[float], scale: list[float], colour_weight: float) -> None:
        super().__init__()
        if not colour_weight > 0:
            raise ValueError(f"colour_weight must be positive, got {colour_weight}")
        self.colour_weight = float(colour_weight)
        self.register_buffer("mix", self._band_mix(len(shift)))
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32) / self._weights())

    @staticmethod
    def _band_mix(c: int) -> torch.Tensor:
        """(C, C): row 0 averages the bands, row k + 1 is band k minus band k + 1."""
        mix = torch.zeros(c, c)
        mix[0] = 1.0 / c
        for k in range(c - 1):
            mix[k + 1, k], mix[k + 1, k + 1] = 1.0, -1.0
        return mix

    def _weights(self) -> torch.Tensor:
        """(C,): 1 for the luminosity, ``colour_weight`` for each colour."""
        weight = torch.full((len(self.mix),), self.colour_weight)
        weight[0] = 1.0
        return weight

    @staticmethod
    def _channels(images: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return torch.einsum("kb,nbhw->nkhw", mix, log_flux(images))

    @classmethod
    def fit(cls, images: torch.Tensor, colour_weight: float) -> LuminosityColourNorm:
        channels = cls._channels(images, cls._band_mix(images.shape[1]))
        dims = (0, 2, 3)
        return cls(channels.mean(dims).tolist(), channels.std(dims).tolist(), colour_weight)

    def _view(self, v: torch.Tensor) -> torch.Tensor:
        return v.view(1, -1, 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        channels = self._channels(images, self.mix)
        return (channels - self._view(self.shift)) / self._view(self.scale)

    def inverse(self, normalised: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W), float32, back from the normalised space."""
        channels = normalised.float() * self._view(self.scale) + self._view(self.shift)
        return torch.expm1(torch.einsum("bk,nkhw->nbhw", torch.linalg.inv(self.mix), channels))

    def config(self) -> dict:
        return {
            "shift": self.shift.tolist(),
            "scale": (self.scale * self._weights()).tolist(),
            "colour_weight": self.colour_weight,
        }


def image_norm_from_config(config: list[float] | dict) -> LogImageNorm | LuminosityColourNorm:
    """The normalisation a stored ``config["norm"]`` describes."""
    if isinstance(config, dict):
        return LuminosityColourNorm(**config)
    return LogImageNorm(*config)


class ConvEncoder(nn.Module):
    """(N, C, H, W) → (N, latent): stride-2 conv blocks down to 4×4, then a linear layer.

    Args:
        channels: image channels C.
        size: H = W.
        latent: output features.
        width: channels of the first conv block (doubled per block, capped at 8×).
    """

    def __init__(self, channels: int, size: int, latent: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c_out = channels, width
        for _ in range(int(math.log2(size // 4))):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.SiLU()]
            c_in, c_out = c_out, min(2 * c_out, 8 * width)
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * 16, latent)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(images).flatten(1))


class ConvDecoder(nn.Module):
    """(N, latent) → (N, C, H, W): the mirror of :class:`ConvEncoder` with transposed convs."""

    def __init__(self, channels: int, size: int, latent: int, width: int = 16) -> None:
        super().__init__()
        n_up = int(math.log2(size // 4))
        widths = [min(width * 2**k, 8 * width) for k in range(n_up)][::-1]
        self.start = widths[0]
        self.head = nn.Linear(latent, widths[0] * 16)
        layers: list[nn.Module] = []
        for k in range(n_up):
            c_out = widths[k + 1] if k + 1 < n_up else width
            layers += [nn.ConvTranspose2d(widths[k], c_out, 4, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconvs(self.head(z).view(len(z), self.start, 4, 4))


class Autoencoder(nn.Module):
    r"""Deterministic conv autoencoder on normalised images; loss :math:`\|\tilde I - D(E(\tilde I))\|^2`.

    ``config``: ``channels``, ``size``, ``latent``, ``width``, ``norm`` ([m, s] of
    :class:`LogImageNorm`, or the ``shift``, ``scale``, ``colour_weight`` of
    :class:`LuminosityColourNorm`).
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        c, size, latent, width = (config[k] for k in ("channels", "size", "latent", "width"))
        self.norm = image_norm_from_config(config["norm"])
        self.encoder = ConvEncoder(c, size, latent, width)
        self.decoder = ConvDecoder(c, size, latent, width)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, latent) of raw images (N, C, H, W)."""
        return self.encoder(self.norm(images))

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the normalised image space (N, C, H, W)."""
        return self.decoder(self.encode(images))

    def to_image(self, normalised: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) from the normalised space, e.g. of a reconstruction or a decoded
        latent."""
        return self.norm.inverse(normalised)

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return torch.mean((self.reconstruct(images) - self.norm(images)) ** 2)

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Latent codes in batches, eval mode, shape (N, latent)."""
        self.eval()
        return torch.cat(
            [self.encode(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        )


def fit_autoencoder(
    images: torch.Tensor,
    *,
    latent: int = 16,
    width: int = 16,
    colour_weight: float | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    patience: int = 5,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> Autoencoder:
    """Train an :class:`Autoencoder` on images (N, C, H, W); returns it with ``.history``.

    Trains on ``device`` (weights initialised on the CPU); the model is returned on the CPU.

    ``colour_weight`` (multi-band images) normalises with :class:`LuminosityColourNorm` at that
    weight; ``None`` with :class:`LogImageNorm`.
    """
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must have shape (N, C, H, H), got {tuple(images.shape)}")
    train_idx, val_idx = split_indices(len(images), val_fraction, seed)
    torch.manual_seed(seed)
    norm = (
        LogImageNorm.fit(images[train_idx])
        if colour_weight is None
        else LuminosityColourNorm.fit(images[train_idx], colour_weight)
    )
    config = {
        "channels": images.shape[1],
        "size": images.shape[2],
        "latent": latent,
        "width": width,
        "norm": norm.config(),
    }
    model = Autoencoder(config).to(device)
    model.history: TrainHistory = train_likelihood(
        model,
        model.loss,
        [images[train_idx].to(device)],
        [images[val_idx].to(device)],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        max_seconds=max_seconds,
        seed=seed,
        progress=progress,
        desc="autoencoder",
    )
    return model.cpu()
