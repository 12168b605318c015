"""netviz inside PyTorch Lightning: records, TensorBoard tags, validation as eval.

Run: python examples/integrations/lightning_example.py [OUT_DIR]
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netviz.integrations.lightning import NetvizCallback


class TinyRegressor(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def loaders(n_train: int = 64, n_val: int = 32, batch: int = 16):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_val, 8, generator=g)
    y = x[:, :1] * 2 + 0.1 * torch.randn(n_train + n_val, 1, generator=g)
    train = TensorDataset(x[:n_train], y[:n_train])
    val = TensorDataset(x[n_train:], y[n_train:])
    return DataLoader(train, batch_size=batch), DataLoader(val, batch_size=batch)


def main(
    out_dir: str = "lightning_logs", max_steps: int = 3, accumulate: int = 2, more_callbacks=()
):
    """Train for ``max_steps`` optimizer steps; return the callback (records in ``.monitor``)."""
    torch.manual_seed(0)
    callback = NetvizCallback(probes=["grad_norm", "activation_stats"], every=1)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        accumulate_grad_batches=accumulate,
        logger=TensorBoardLogger(out_dir, name="demo"),
        callbacks=[callback, *more_callbacks],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    train, val = loaders()
    trainer.fit(TinyRegressor(), train, val)
    return callback


if __name__ == "__main__":
    cb = main(sys.argv[1] if len(sys.argv) > 1 else "lightning_logs")
    print("records saved to", cb.saved_to)
