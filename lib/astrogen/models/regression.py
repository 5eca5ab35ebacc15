r"""MLP-ensemble point regression: the baseline the cINN is compared with.

Each member is an MLP on standardised inputs and targets, trained first on the mean squared error
(fast, smooth start) and then on the mean absolute error, whose minimiser is the conditional
median. The ensemble predicts the median of its members; their spread measures training noise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from astrogen.models.bijectors import Standardize
from astrogen.train import split_indices, train_likelihood


def mlp(n_in: int, n_out: int, hidden: int, layers: int) -> nn.Sequential:
    """Fully connected SiLU network (N, n_in) → (N, n_out) with ``layers`` hidden layers."""
    mods: list[nn.Module] = []
    for k in range(layers):
        mods += [nn.Linear(n_in if k == 0 else hidden, hidden), nn.SiLU()]
    return nn.Sequential(*mods, nn.Linear(hidden, n_out))


class MLPEnsemble(nn.Module):
    """K MLPs mapping x (N, C) → y (N, D); scalers in ``config`` (JSON)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.x_norm = Standardize.from_dict(config["x_scaler"])
        self.y_norm = Standardize.from_dict(config["y_scaler"])
        self.members = nn.ModuleList(
            mlp(config["inputs"], config["outputs"], config["hidden"], config["layers"])
            for _ in range(config["members"])
        )

    @torch.no_grad()
    def member_predictions(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Each member's prediction in target units, (K, N, D)."""
        self.eval()
        c = self.x_norm(torch.as_tensor(np.asarray(x), dtype=torch.float64))[0].float()
        return np.stack([self.y_norm.inverse(m(c).double()).numpy() for m in self.members])

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Median over members, (N, D)."""
        return np.median(self.member_predictions(x), axis=0)


def fit_mlp_ensemble(
    x: np.ndarray,
    y: np.ndarray,
    *,
    members: int = 7,
    hidden: int = 128,
    layers: int = 3,
    epochs_mse: int = 20,
    epochs_mae: int = 20,
    batch_size: int = 512,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> MLPEnsemble:
    """Train ``members`` MLPs (seeds ``seed·100 + k``), each MSE then MAE; best-validation states.

    Trains on ``device``; the ensemble is returned on the CPU.
    """
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    train_idx, val_idx = split_indices(len(xt), val_fraction, seed)
    config = {
        "inputs": xt.shape[1],
        "outputs": yt.shape[1],
        "hidden": hidden,
        "layers": layers,
        "members": members,
        "x_scaler": Standardize(xt.shape[1], xt[train_idx]).to_dict(),
        "y_scaler": Standardize(yt.shape[1], yt[train_idx]).to_dict(),
    }
    torch.manual_seed(seed)
    ensemble = MLPEnsemble(config)
    c = ensemble.x_norm(xt)[0].float().to(device)
    t = ensemble.y_norm(yt)[0].float().to(device)
    for k, net in enumerate(ensemble.members):
        torch.manual_seed(seed * 100 + k)
        for layer in net:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        net.to(device)  # initialised on the CPU, so the weights do not depend on the device
        for name, loss, epochs in (
            ("mse", lambda a, b, net=net: torch.mean((net(a) - b) ** 2), epochs_mse),
            ("mae", lambda a, b, net=net: torch.mean(torch.abs(net(a) - b)), epochs_mae),
        ):
            train_likelihood(
                net, loss, [c[train_idx], t[train_idx]], [c[val_idx], t[val_idx]],
                epochs=epochs, batch_size=batch_size, lr=lr, patience=epochs, seed=seed * 100 + k,
                progress=progress, desc=f"MLP {k + 1}/{members} {name}",
            )  # fmt: skip
    return ensemble.cpu()
