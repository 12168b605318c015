"""
F1 · Autoencoder and denoising autoencoder on digits
====================================================

*Lecture topic:* Auto-encoders, denoising auto-encoders (notes 004)

Two identical autoencoders 64 -> 64 -> **2** -> 64 -> 64 are trained on the
8x8 scikit-learn digits (pixels scaled to [0, 1]). The plain autoencoder
minimises :math:`\\|x - d(e(x))\\|^2`; the denoising one sees a corrupted input
:math:`\\tilde x = x + \\mathcal{N}(0, \\sigma^2 I)` and still reconstructs the
clean :math:`x`, :math:`\\|x - d(e(\\tilde x))\\|^2`. On digits with fresh noise the
denoising autoencoder returns clean-looking digits where the plain one follows
the noise (both blurry: a 2-D code keeps a digit's identity, not its details);
the 2-D codes group the classes without ever seeing a label.
"""

# %%
# Data: 1797 digits, 64 pixels in [0, 1]. Noise level sigma = 0.5 (half the
# pixel range; the notes use N(0, I) for unit-scale data).
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from netviz.gallery import fast, pick, setup
from netviz.plot._style import PALETTE

setup()

digits = load_digits()
images = torch.tensor(digits.data, dtype=torch.float32) / 16.0
labels = torch.tensor(digits.target)
noise_std = 0.5
train_steps = pick(300, 60)
latent_dim = 2
noisy_images = images + noise_std * torch.randn(
    images.shape, generator=torch.Generator().manual_seed(3)
)


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, latent_dim))
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def train(denoising: bool) -> AutoEncoder:
    torch.manual_seed(0)  # same initial weights for both models
    model = AutoEncoder()
    generator = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(train_steps):
        clean = images[torch.randint(0, len(images), (256,), generator=generator)]
        inputs = (
            clean + noise_std * torch.randn(clean.shape, generator=generator)
            if denoising
            else clean
        )
        loss = F.mse_loss(model(inputs), clean)  # always compare with the clean digit
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


autoencoder = train(denoising=False)
denoiser = train(denoising=True)

with torch.no_grad():
    ae_from_noisy = autoencoder(noisy_images)
    dae_from_noisy = denoiser(noisy_images)
    ae_codes = autoencoder.encoder(images)
    dae_codes = denoiser.encoder(images)
    ae_clean_mse = F.mse_loss(autoencoder(images), images).item()
    dae_clean_mse = F.mse_loss(denoiser(images), images).item()
noisy_input_mse = F.mse_loss(noisy_images.clamp(0, 1), images).item()
ae_noisy_mse = F.mse_loss(ae_from_noisy, images).item()
dae_noisy_mse = F.mse_loss(dae_from_noisy, images).item()

# %%
# Left: clean, noisy, and the two reconstructions of the noisy digit (one
# example per class). Right: the 2-D codes of all clean digits.
fig = plt.figure(figsize=(12.8, 7.2 * 0.7), layout="constrained")
left, right = fig.subfigures(1, 2, width_ratios=[1.4, 1])
examples = [int((labels == c).nonzero()[0]) for c in range(10)]
rows = [
    ("clean $x$", images),
    (f"noisy $\\tilde x$ (σ={noise_std})", noisy_images.clamp(0, 1)),
    (f"autoencoder\nMSE {ae_noisy_mse:.3f}", ae_from_noisy),
    (f"denoising AE\nMSE {dae_noisy_mse:.3f}", dae_from_noisy),
]
grid = left.subplots(len(rows), len(examples), gridspec_kw={"wspace": 0.05, "hspace": 0.08})
for r, (name, data) in enumerate(rows):
    for c, idx in enumerate(examples):
        ax = grid[r, c]
        ax.imshow(data[idx].reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    grid[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
left.suptitle("reconstructions of noisy digits (one per class)", fontsize=12)

codes_axes = right.subplots(1, 2, sharex=False)
for ax, codes, name in (
    (codes_axes[0], ae_codes, "autoencoder"),
    (codes_axes[1], dae_codes, "denoising AE"),
):
    for c in range(10):
        pts = codes[labels == c].numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=5, color=PALETTE[c], alpha=0.7, label=str(c))
        centre = np.median(pts, axis=0)
        ax.text(
            centre[0],
            centre[1],
            str(c),
            fontsize=13,
            weight="bold",
            ha="center",
            va="center",
            color="black",
            bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec=PALETTE[c], alpha=0.85),
        )
    ax.set_title(f"2-D code, {name}", fontsize=11)
    ax.set_xlabel("$z_1$")
    ax.set_xticks([])
    ax.set_yticks([])
codes_axes[0].set_ylabel("$z_2$")
fig.suptitle("F1 · Autoencoder vs denoising autoencoder on 8x8 digits (64 → 2 → 64)")

# %%
# Checks: the noise is real (noisy inputs are far from the clean digits); after
# full training the denoising AE reconstructs clean digits from noisy inputs
# better than the plain AE, and better than the noisy input itself.
assert noisy_input_mse > 0.1
assert images.shape == (1797, 64) and float(images.max()) == 1.0
if not fast():
    assert dae_noisy_mse < 0.75 * ae_noisy_mse, (dae_noisy_mse, ae_noisy_mse)
    assert dae_noisy_mse < 0.5 * noisy_input_mse
    assert ae_clean_mse < 0.05 and dae_clean_mse < 0.06
