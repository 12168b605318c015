"""netviz in an accelerate loop with gradient accumulation and the TensorBoard tracker.

Run: python examples/integrations/accelerate_example.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netviz.integrations.accelerate as nv_accelerate


def main(project_dir: str = "accelerate_runs", batches: int = 8, accumulate: int = 2):
    """Train on ``batches`` micro-batches; return ``(accelerator, monitor)``."""
    torch.manual_seed(0)
    accelerator = Accelerator(
        cpu=True,
        gradient_accumulation_steps=accumulate,
        log_with="tensorboard",
        project_dir=project_dir,
    )
    accelerator.init_trackers("demo")
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(batches * 4, 8), torch.randn(batches * 4, 1)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    model, opt, loader = accelerator.prepare(model, opt, loader)

    monitor = nv_accelerate.watch(accelerator, model, opt, probes=["grad_norm", "activation_stats"])
    for xb, yb in loader:
        with accelerator.accumulate(model):
            loss = nn.functional.mse_loss(model(xb), yb)
            accelerator.backward(loss)
            opt.step()  # a real step only when gradients sync
            opt.zero_grad()
    monitor.detach()
    accelerator.end_training()
    return accelerator, monitor


if __name__ == "__main__":
    _, mon = main(sys.argv[1] if len(sys.argv) > 1 else "accelerate_runs")
    print(mon.to_pandas().groupby("step").size())
