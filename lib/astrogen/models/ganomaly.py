r"""GANomaly (Akçay, Atapour-Abarghouei & Breckon 2018) for 3×64×64 images.

The generator is an encoder–decoder–encoder: :math:`z = E_1(x)`, :math:`\hat x = G(z)`,
:math:`\hat z = E_2(\hat x)`, with x (N, 3, 64, 64) in [−1, 1] and z, ẑ (N, latent). A
discriminator D (a DCGAN encoder with a sigmoid head) separates x from x̂. The generator minimises

.. math:: L = w_{\rm adv}\,\lVert f(x) - f(\hat x)\rVert_2^2 + w_{\rm con}\,\lVert x - \hat x\rVert_1
          + w_{\rm enc}\,\lVert z - \hat z\rVert_2^2

(f: D's last feature map, feature matching; weights 1, 50, 1 as in the seed); D minimises the
binary cross-entropy of real vs reconstructed. Trained on normal images only, the anomaly score
of an image is :math:`A(x) = \overline{(z - \hat z)^2}`, large where the image leaves the manifold
the generator learned.

Corrections to the seed: scores are computed with every BatchNorm in eval mode (a score must not
depend on which other images share the batch); a collapsed discriminator — its loss pinned below
:data:`COLLAPSE_LOSS` for :data:`COLLAPSE_STEPS` consecutive steps — is re-initialised and the
event logged in the history; the checkpoint is chosen by the generator's loss on held-out
*observed* images only.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

COLLAPSE_LOSS = 1e-5
COLLAPSE_STEPS = 20


def _encoder(width: int, out: int) -> nn.Sequential:
    """(N, 3, 64, 64) → (N, out, 1, 1): four stride-2 4×4 convolutions then a 4×4 valid one."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    for k in range(3):
        c_in, c_out = width * 2**k, width * 2 ** (k + 1)
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                   nn.LeakyReLU(0.2)]  # fmt: skip
    layers.append(nn.Conv2d(width * 8, out, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def _decoder(width: int, latent: int) -> nn.Sequential:
    """(N, latent, 1, 1) → (N, 3, 64, 64) in [−1, 1]: the encoder's mirror image."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(latent, width * 8, 4, 1, 0, bias=False),
                               nn.BatchNorm2d(width * 8), nn.ReLU()]  # fmt: skip
    for k in range(3, 0, -1):
        c_in, c_out = width * 2**k, width * 2 ** (k - 1)
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU()]  # fmt: skip
    layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """D(x) ∈ (0, 1) (N,) and its feature map f(x) (N, 8·width, 4, 4)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        body = _encoder(width, 1)
        self.features, self.head = body[:-1], nn.Sequential(body[-1], nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.head(f).flatten(), f


class GANomaly(nn.Module):
    """Encoder–decoder–encoder generator with its discriminator.

    Args:
        config: ``width`` (channels of the first convolution) and ``latent`` (size of z).
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        width, latent = config["width"], config["latent"]
        self.encoder1 = _encoder(width, latent)
        self.decoder = _decoder(width, latent)
        self.encoder2 = _encoder(width, latent)
        self.discriminator = Discriminator(width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x̂ (N, 3, 64, 64), z (N, latent), ẑ (N, latent))."""
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        return x_hat, z.flatten(1), self.encoder2(x_hat).flatten(1)

    @torch.no_grad()
    def score(self, x: torch.Tensor, batch: int = 256) -> np.ndarray:
        """Anomaly score A(x) = mean (z − ẑ)² per image, (N,), with BatchNorm in eval mode."""
        self.eval()
        out = []
        for i in range(0, len(x), batch):
            _, z, z_hat = self(torch.as_tensor(x[i : i + batch], dtype=torch.float32))
            out.append(((z - z_hat) ** 2).mean(1))
        return torch.cat(out).double().numpy()


def generator_loss(
    model: GANomaly, x: torch.Tensor, weights: tuple[float, float, float] = (1.0, 50.0, 1.0)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted generator loss of the module docstring and the reconstructions x̂."""
    x_hat, z, z_hat = model(x)
    _, f_real = model.discriminator(x)
    _, f_fake = model.discriminator(x_hat)
    adv = ((f_real.mean(0) - f_fake.mean(0)) ** 2).mean()
    con = (x - x_hat).abs().mean()
    enc = ((z - z_hat) ** 2).mean()
    w_adv, w_con, w_enc = weights
    return w_adv * adv + w_con * con + w_enc * enc, x_hat


def fit_ganomaly(
    train: np.ndarray,
    val: np.ndarray,
    *,
    width: int = 64,
    latent: int = 128,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-4,
    beta1: float = 0.5,
    weights: tuple[float, float, float] = (1.0, 50.0, 1.0),
    seed: int = 0,
    progress: bool = True,
) -> GANomaly:
    """Train GANomaly on normal images ``train`` (N, 3, 64, 64) in [−1, 1].

    After every epoch the generator loss on ``val`` (held-out normal images) is measured in eval
    mode and the best state is kept. ``model.history`` holds per-epoch train/val losses, the
    discriminator loss and the generator steps at which the discriminator was re-initialised.
    """
    torch.manual_seed(seed)
    rows = torch.Generator().manual_seed(seed)
    model = GANomaly({"width": width, "latent": latent})
    gen_params = [p for n, p in model.named_parameters() if not n.startswith("discriminator")]
    opt_g = torch.optim.Adam(gen_params, lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=(beta1, 0.999))
    bce = nn.BCELoss()
    x_train = torch.as_tensor(train, dtype=torch.float32)
    x_val = torch.as_tensor(val, dtype=torch.float32)
    history: dict = {"train": [], "val": [], "d_loss": [], "reinit_steps": []}
    best, best_state, pinned, step, start = np.inf, None, 0, 0, time.perf_counter()
    for _ in tqdm(range(epochs), desc="GANomaly", disable=not progress, mininterval=2):
        model.train()
        order = torch.randperm(len(x_train), generator=rows)
        g_sum = d_sum = 0.0
        for i in range(0, len(order) - batch_size + 1, batch_size):
            x = x_train[order[i : i + batch_size]]
            loss_g, x_hat = generator_loss(model, x, weights)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            p_real, _ = model.discriminator(x)
            p_fake, _ = model.discriminator(x_hat.detach())
            loss_d = 0.5 * (
                bce(p_real, torch.ones_like(p_real)) + bce(p_fake, torch.zeros_like(p_fake))
            )
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            step += 1
            pinned = pinned + 1 if loss_d.item() < COLLAPSE_LOSS else 0
            if pinned >= COLLAPSE_STEPS:  # D wins outright: no gradient reaches G any more
                model.discriminator = Discriminator(width)
                opt_d = torch.optim.Adam(
                    model.discriminator.parameters(), lr=lr, betas=(beta1, 0.999)
                )
                history["reinit_steps"].append(step)
                pinned = 0
            g_sum, d_sum = g_sum + loss_g.item(), d_sum + loss_d.item()
        n_batches = max(1, len(order) // batch_size)
        model.eval()
        with torch.no_grad():
            val_loss = np.mean([generator_loss(model, x_val[j : j + 256], weights)[0].item()
                                for j in range(0, len(x_val), 256)])  # fmt: skip
        history["train"].append(g_sum / n_batches)
        history["d_loss"].append(d_sum / n_batches)
        history["val"].append(float(val_loss))
        if val_loss < best:
            best, best_state = val_loss, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    history["best_epoch"] = int(np.argmin(history["val"]))
    history["wall_s"] = time.perf_counter() - start
    model.history = history
    return model.eval()


def percentile_scores(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scores as the fraction of held-out *observed* scores ``reference`` below them, in [0, 1].

    The normalisation is fixed once from the observed reference set, so a faithful simulation
    averages 0.5 and any set of images can be rated on the same scale, independently of batch.
    """
    ref = np.sort(np.asarray(reference, dtype=float))
    return np.searchsorted(ref, np.asarray(scores, dtype=float), side="right") / len(ref)


class ImageReferee(nn.Module):
    """A supervised classifier with GANomaly's encoder: logit (N,) that x (N, 3, 64, 64) in
    [−1, 1] belongs to class 1.

    Trained on labelled examples of both classes, its held-out AUROC is a lower bound on how
    separable two image populations are: what a one-class detector, which never sees the
    anomalies, can be judged against.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = _encoder(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten()

    @torch.no_grad()
    def logits(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Logits (N,) in eval mode (BatchNorm statistics fixed, so batch-independent)."""
        self.eval()
        x = torch.as_tensor(x, dtype=torch.float32)
        return torch.cat([self(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy()


def fit_referee(
    x0: np.ndarray,
    x1: np.ndarray,
    *,
    width: int = 16,
    epochs: int = 6,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> ImageReferee:
    """Train an :class:`ImageReferee` (binary cross-entropy, Adam) to tell images x1 (class 1)
    from x0 (class 0), both (N, 3, 64, 64) in [−1, 1]; the state after the last epoch is kept
    (no selection, so a held-out test set stays untouched)."""
    torch.manual_seed(seed)
    rows = torch.Generator().manual_seed(seed)
    model = ImageReferee(width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.as_tensor(np.concatenate([x0, x1]), dtype=torch.float32)
    y = torch.cat([torch.zeros(len(x0)), torch.ones(len(x1))])
    for _ in tqdm(range(epochs), desc="referee", disable=not progress, mininterval=2):
        model.train()
        order = torch.randperm(len(x), generator=rows)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
