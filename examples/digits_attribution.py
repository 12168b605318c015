"""Attribution maps of a small CNN trained on scikit-learn's digits, with ``netviz.attribution``.

Trains a two-convolution network with in-place ReLUs on the 8x8 digits
(every 4th digit of each class held out for testing), then explains its
prediction for four test digits with five methods (saliency, input x
gradient, integrated gradients, Grad-CAM on the second conv layer,
occlusion) and draws them with :func:`netviz.plot.attribution`. Prints the
test accuracy and the integrated-gradients completeness check.

Writes ``docs/img/digits_attribution.png`` (or into the folder given as
argument)::

    python examples/digits_attribution.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

import netviz
from netviz.plot import savefig, style


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: images ``(N, 1, 8, 8)`` in [0, 1]."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    test = torch.zeros(len(y), dtype=torch.bool)
    for c in range(10):
        test[(y == c).nonzero().flatten()[::4]] = True
    return x[~test], y[~test], x[test], y[test]


def train_cnn(x: torch.Tensor, y: torch.Tensor, steps: int = 300) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (128,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def main(out_dir: Path) -> None:
    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = digits()
    model = train_cnn(x_train, y_train)
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"test accuracy {accuracy:.1%} on {len(y_test)} digits")

    examples = torch.stack([(y_test == c).nonzero()[0, 0] for c in (0, 3, 5, 8)])
    inputs = x_test[examples]
    methods = {
        "saliency": ({}, "abs"),
        "input_x_gradient": ({}, "signed"),
        "integrated_gradients": ({"n_steps": 64}, "signed"),
        "grad_cam": ({"layer": model[2]}, "blend"),
        "occlusion": ({"window": (1, 2, 2)}, "signed"),
    }
    results = {
        m: netviz.attribution(model, inputs, None, m, **kw) for m, (kw, _) in methods.items()
    }
    ig = results["integrated_gradients"]
    with torch.no_grad():
        rows = torch.arange(len(inputs))
        gain = model(inputs)[rows, ig.target] - model(torch.zeros_like(inputs))[rows, ig.target]
    print("predicted", ig.target.tolist(), "labels", y_test[examples].tolist())
    print("sum of IG     ", [round(v, 3) for v in ig.attr.sum(dim=(1, 2, 3)).tolist()])
    print("f(x) - f(0)   ", [round(v, 3) for v in gain.tolist()])
    print("Captum's delta", [f"{v:.1e}" for v in ig.delta.tolist()])

    with style():
        fig, axes = plt.subplots(
            len(inputs), len(methods) + 1, figsize=(12.8, 9.0), layout="constrained"
        )
        for r in range(len(inputs)):
            axes[r, 0].imshow(inputs[r, 0], cmap="gray_r", vmin=0, vmax=1)
            axes[r, 0].set_axis_off()
            axes[r, 0].set_title(
                f"label {int(y_test[examples[r]])}, predicted {int(ig.target[r])}", fontsize=10
            )
            for c, (name, (_, kind)) in enumerate(methods.items(), start=1):
                netviz.plot.attribution(
                    results[name].attr[r],
                    axes[r, c],
                    image=inputs[r],
                    kind=kind,
                    colorbar=False,
                    title=name.replace("_", " ") if r == 0 else None,
                )
        fig.suptitle(
            f"netviz.attribution on the digits CNN (test accuracy {accuracy:.0%})\n"
            "red pushes towards the predicted class, blue away; each map on its own scale"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = savefig(fig, out_dir / "digits_attribution.png", dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[1] / "docs" / "img"
    )
