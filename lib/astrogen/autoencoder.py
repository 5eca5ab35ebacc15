r"""Convolutional image encoders and a conv autoencoder.

Images arrive as counts or fluxes of shape (N, C, H, W) with H = W a power of two ≥ 16. They are
first compressed, :math:`\tilde I = (\ln(1 + I) - m)/s` with m, s fixed from the training images,
so bright cores and faint substructure both matter to the loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from astrogen.train import TrainHistory, split_indices, train_likelihood


class LogImageNorm(nn.Module):
    r""":math:`\tilde I = (\ln(1 + \max(I, 0)) - m)/s`; ``m``, ``s`` are buffers (set on fit)."""

    def __init__(self, shift: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    @classmethod
    def fit(cls, images: torch.Tensor) -> LogImageNorm:
        logged = torch.log1p(images.float().clamp_min(0))
        return cls(logged.mean().item(), logged.std().item())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (torch.log1p(images.float().clamp_min(0)) - self.shift) / self.scale


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

    ``config``: ``channels``, ``size``, ``latent``, ``width``, ``norm`` ([m, s]).
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        c, size, latent, width = (config[k] for k in ("channels", "size", "latent", "width"))
        self.norm = LogImageNorm(*config["norm"])
        self.encoder = ConvEncoder(c, size, latent, width)
        self.decoder = ConvDecoder(c, size, latent, width)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, latent) of raw images (N, C, H, W)."""
        return self.encoder(self.norm(images))

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the normalised image space (N, C, H, W)."""
        return self.decoder(self.encode(images))

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
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    patience: int = 5,
    max_seconds: float | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Autoencoder:
    """Train an :class:`Autoencoder` on images (N, C, H, W); returns it with ``.history``."""
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must have shape (N, C, H, H), got {tuple(images.shape)}")
    train_idx, val_idx = split_indices(len(images), val_fraction, seed)
    torch.manual_seed(seed)
    norm = LogImageNorm.fit(images[train_idx])
    config = {
        "channels": images.shape[1],
        "size": images.shape[2],
        "latent": latent,
        "width": width,
        "norm": [norm.shift.item(), norm.scale.item()],
    }
    model = Autoencoder(config)
    model.history: TrainHistory = train_likelihood(
        model,
        model.loss,
        [images[train_idx]],
        [images[val_idx]],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        max_seconds=max_seconds,
        seed=seed,
        progress=progress,
        desc="autoencoder",
    )
    return model
