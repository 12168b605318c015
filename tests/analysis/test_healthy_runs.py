"""No false alarms: healthy networks trained for real (briefly) on digits get no findings,
with every check over training running (train and eval rows recorded)."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

import netviz
from netviz import diagnose
from netviz.capture.probes import UnitActivity

PROBES = ["grad_stats", "activation_stats", "weight_stats", UnitActivity()]


def _digits():
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    return x, torch.tensor(d.target)


def he_mlp():
    layers: list[nn.Module] = []
    for i, o in ((64, 128), (128, 128), (128, 64)):
        lin = nn.Linear(i, o)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 10)), lambda x: x


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        h = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(x + self.bn2(self.conv2(h)))


class ResCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.act = nn.ReLU()
        self.blocks = nn.Sequential(ResBlock(16), ResBlock(16))
        self.head = nn.Linear(16, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):
        return self.head(self.blocks(self.act(self.stem(x))).mean(dim=(2, 3)))


def residual_cnn():
    return ResCNN(), lambda x: x.reshape(-1, 1, 8, 8)


class TinyTransformer(nn.Module):
    """Rows of the 8x8 digit as 8 tokens of 8 features."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.pos = nn.Parameter(0.02 * torch.randn(1, 8, 32))
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x) + self.pos).mean(1))


def small_transformer():
    return TinyTransformer(), lambda x: x.reshape(-1, 8, 8)


def _train(build, steps, lr=1e-3, every_eval=5):
    """Adam on digits with watch; every few steps a validation forward under no_grad,
    which watch records with phase "eval"."""
    torch.manual_seed(0)
    net, shape = build()
    x, y = _digits()
    train_x, train_y, val_x = x[:1500], y[:1500], shape(x[1500:1628])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    with netviz.watch(net, probes=PROBES, optimizer=opt) as mon:
        for step in range(steps):
            idx = torch.randint(0, len(train_x), (64,))
            opt.zero_grad()
            F.cross_entropy(net(shape(train_x[idx])), train_y[idx]).backward()
            opt.step()
            if step % every_eval == 0:
                net.eval()
                with torch.no_grad():
                    net(val_x)
                net.train()
    records = mon.to_pandas()
    assert set(records.phase) == {"train", "eval"}
    return records


@pytest.mark.slow
@pytest.mark.parametrize(
    ("build", "steps"),
    [
        pytest.param(he_mlp, 40, id="mlp-he-adam"),
        pytest.param(residual_cnn, 30, id="residual-cnn"),
        pytest.param(small_transformer, 30, id="transformer"),
    ],
)
def test_healthy_training_runs_get_no_findings(build, steps):
    report = diagnose(records=_train(build, steps))
    assert report.findings == [], str(report)
    ran = {c.name for c in report.checks if c.ran}
    want = {"nonfinite", "flow", "update_ratio", "gradient_trend", "gradient_spike", "eval_drift"}
    assert want <= ran, str(report)
    if build is not small_transformer:  # its ReLU is F.relu, which watch does not see
        assert "dead_units" in ran
