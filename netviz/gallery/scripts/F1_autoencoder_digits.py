"""
F1 · Autoencoder and denoising autoencoder on digits
====================================================

*Lecture topic:* Auto-encoders, denoising auto-encoders (notes 004)

Autoencoders 64 -> *h* -> *k* -> *h* -> 64 are trained on the 8x8
scikit-learn digits (pixels scaled to [0, 1]). The plain autoencoder minimises
:math:`\\|x - d(e(x))\\|^2`; the denoising one sees a corrupted input
:math:`\\tilde x = x + \\mathcal{N}(0, \\sigma^2 I)` and still reconstructs the
clean :math:`x`, :math:`\\|x - d(e(\\tilde x))\\|^2`. The reconstructions (left)
go through a **16-unit** code (*h* = 128): on digits with fresh noise the denoising
autoencoder returns the right digit (the digits CNN of D9/D12 reads most of
them correctly; the figure marks in red the ones it misreads) where the plain
one follows the noise. A 2-unit code is too
narrow to keep every digit's identity, so the same two models with a **2-unit**
code (*h* = 64) are trained only for the latent scatter (right): their codes group the
classes without ever seeing a label.
"""

# %%
# Data: 1797 digits, 64 pixels in [0, 1]. Noise level sigma = 0.4 (40 % of the
# pixel range; the notes use N(0, I) for unit-scale data).
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from netviz.gallery import fast, pick, setup
from netviz.plot.theme import PALETTE

setup()

if str(Path(__file__).resolve().parent) not in sys.path:  # the shared _digits.py beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _digits import spread_labels, train_digits_cnn

digits = load_digits()
images = torch.tensor(digits.data, dtype=torch.float32) / 16.0
labels = torch.tensor(digits.target)
noise_std = 0.4
train_steps = pick(600, 150)
wide_dim, latent_dim = 16, 2
noisy_images = images + noise_std * torch.randn(
    images.shape, generator=torch.Generator().manual_seed(3)
)


class AutoEncoder(nn.Module):
    def __init__(self, code: int, hidden: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, code))
        self.decoder = nn.Sequential(
            nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, 64), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def train(denoising: bool, code: int, hidden: int) -> AutoEncoder:
    torch.manual_seed(0)  # same initial weights for the plain and the denoising model
    model = AutoEncoder(code, hidden)
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


# Reconstructions through the 16-unit code; latent scatter from the 2-unit code.
autoencoder = train(denoising=False, code=wide_dim, hidden=128)
denoiser = train(denoising=True, code=wide_dim, hidden=128)
autoencoder_2d = train(denoising=False, code=latent_dim, hidden=64)
denoiser_2d = train(denoising=True, code=latent_dim, hidden=64)

with torch.no_grad():
    ae_from_noisy = autoencoder(noisy_images)
    dae_from_noisy = denoiser(noisy_images)
    ae_codes = autoencoder_2d.encoder(images)
    dae_codes = denoiser_2d.encoder(images)
    ae_clean_mse = F.mse_loss(autoencoder(images), images).item()
    dae_clean_mse = F.mse_loss(denoiser(images), images).item()
noisy_input_mse = F.mse_loss(noisy_images.clamp(0, 1), images).item()
ae_noisy_mse = F.mse_loss(ae_from_noisy, images).item()
dae_noisy_mse = F.mse_loss(dae_from_noisy, images).item()

# %%
# Which digit do the reconstructions show? The digits CNN of D9/D12 (trained
# on its own split of the clean digits) reads every image of the figure.
cnn, _, _ = train_digits_cnn(steps=150)


def read_digits(batch: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return cnn(batch.reshape(-1, 1, 8, 8)).argmax(dim=1)


cnn_reads = {
    "noisy": read_digits(noisy_images.clamp(0, 1)),
    "autoencoder": read_digits(ae_from_noisy),
    "denoising AE": read_digits(dae_from_noisy),
}
cnn_accuracy = {k: float((v == labels).float().mean()) for k, v in cnn_reads.items()}

# %%
# Left: clean, noisy, and the two reconstructions of the noisy digit (one
# example per class), each with the digit the CNN reads in it (red: wrong).
# Right: the 2-D codes of all clean digits.
fig = plt.figure(figsize=(12.8, 7.2 * 0.75), layout="constrained")
left, right = fig.subfigures(1, 2, squeeze=False, width_ratios=[1.4, 1])[0]
examples = [int((labels == c).nonzero()[0]) for c in range(10)]
rows = [
    ("clean $x$", images, None),
    (f"noisy $\\tilde x$ (σ={noise_std})", noisy_images.clamp(0, 1), "noisy"),
    (f"autoencoder\nMSE {ae_noisy_mse:.3f}", ae_from_noisy, "autoencoder"),
    (f"denoising AE\nMSE {dae_noisy_mse:.3f}", dae_from_noisy, "denoising AE"),
]
grid = left.subplots(len(rows), len(examples), gridspec_kw={"wspace": 0.05, "hspace": 0.1})
for r, (name, data, key) in enumerate(rows):
    for c, idx in enumerate(examples):
        ax = grid[r, c]
        ax.imshow(data[idx].reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if key is not None:
            read = int(cnn_reads[key][idx])
            ax.set_xlabel(
                f"CNN: {read}",
                fontsize=8,
                labelpad=1,
                color="black" if read == c else PALETTE[3],
                weight="normal" if read == c else "bold",
            )
    grid[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    if key is not None:
        grid[r, -1].yaxis.set_label_position("right")
left.suptitle(
    f"noisy digits reconstructed through a {wide_dim}-unit code (one per class)\n"
    f"digits CNN (D9/D12) right on {cnn_accuracy['noisy']:.0%} of all noisy inputs,\n"
    f"{cnn_accuracy['autoencoder']:.0%} of AE, {cnn_accuracy['denoising AE']:.0%} of "
    "denoising-AE reconstructions; red: misread",
    fontsize=11,
)

codes_axes = right.subplots(1, 2, sharex=False)
centre_labels, centres_by_model = {}, {}
for ax, codes, name in (
    (codes_axes[0], ae_codes, "autoencoder"),
    (codes_axes[1], dae_codes, "denoising AE"),
):
    centres = []
    for c in range(10):
        pts = codes[labels == c].numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=5, color=PALETTE[c], alpha=0.7, label=str(c))
        centres.append(np.median(pts, axis=0))
    centres_by_model[name] = np.array(centres)
    ax.set_title(f"2-D code, {name}", fontsize=11)
    ax.set_xlabel("$z_1$")
    ax.set_xticks([])
    ax.set_yticks([])
codes_axes[0].set_ylabel("$z_2$")
right.suptitle(f"{latent_dim}-unit code of every clean digit\n(label: class median)", fontsize=11)
fig.suptitle(
    f"F1 · Autoencoder vs denoising autoencoder on 8x8 digits "
    f"(64 → {wide_dim} → 64 reconstructions, 64 → {latent_dim} → 64 codes)"
)

# %%
# Medians of overlapping classes lie close together: move their labels apart
# (in pixels of the laid-out figure, so that the round labels never cover one
# another) and draw a thin leader line to the true median.
fig.draw_without_rendering()
label_size = 12
diameter = 2.2 * label_size * fig.dpi / 72  # circle around one digit, with padding
for ax, name in zip(codes_axes, centres_by_model):
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    model_centres = centres_by_model[name]
    origin = np.array([ax.bbox.x0, ax.bbox.y0])
    px = ax.transData.transform(model_centres) - origin
    placed_px = spread_labels(px, diameter, box=(ax.bbox.width, ax.bbox.height))
    placed = ax.transData.inverted().transform(placed_px + origin)
    texts = []
    for c in range(10):
        if np.hypot(*(placed_px[c] - px[c])) > 2:
            ax.plot(*zip(model_centres[c], placed[c]), color="black", lw=0.8, zorder=3)
        texts.append(
            ax.text(
                placed[c][0],
                placed[c][1],
                str(c),
                fontsize=label_size,
                weight="bold",
                ha="center",
                va="center",
                color="black",
                zorder=4,
                bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec=PALETTE[c], alpha=0.9),
            )
        )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    centre_labels[name] = texts

# %%
# Checks: the noise is real (noisy inputs are far from the clean digits); the
# denoising AE reconstructs clean digits from noisy inputs better than the
# plain AE and than the noisy input itself, and the CNN reads the right digit
# in most of its reconstructions (more often than in the noisy inputs).
assert noisy_input_mse > 0.05, noisy_input_mse
assert images.shape == (1797, 64) and float(images.max()) == 1.0
assert cnn_accuracy["denoising AE"] > 0.6, cnn_accuracy
if not fast():
    assert dae_noisy_mse < 0.75 * ae_noisy_mse, (dae_noisy_mse, ae_noisy_mse)
    assert dae_noisy_mse < 0.5 * noisy_input_mse
    assert ae_clean_mse < 0.02 and dae_clean_mse < 0.04, (ae_clean_mse, dae_clean_mse)
    assert cnn_accuracy["denoising AE"] > max(0.7, cnn_accuracy["noisy"] + 0.1), cnn_accuracy
    shown = [int(cnn_reads["denoising AE"][i]) for i in examples]
    assert sum(s == c for c, s in enumerate(shown)) >= 8, shown

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
