"""netviz.summary on a small CNN, an LSTM classifier and a TransformerEncoder; hook hygiene.

Expected values are worked out by hand in the comments (not by netviz).
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from _layermath_oracle import one_thread  # noqa: F401  (autouse fixture)
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from netviz.layermath import param_count
from netviz.model_summary import COLUMNS, summary

pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning")


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 2 * 2, 10))

    def forward(self, x):
        return self.head(self.features(x))


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(64, 3)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.fc(out[:, -1])


def transformer():
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


def all_hooks(model):
    return [
        h
        for m in model.modules()
        for h in (*m._forward_hooks, *m._forward_pre_hooks, *m._forward_hooks_with_kwargs)
    ]


def model_flops(model, *inputs):
    # oneDNN's fused LSTM kernel is opaque to FlopCounterMode (it would count 0):
    # switch it off so the counter sees the reference implementation's matmuls
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops()


def test_small_cnn_table():
    model = SmallCNN()
    result = summary(model, (2, 1, 8, 8))
    t = result.to_pandas()
    assert list(t.columns) == COLUMNS
    assert list(t["module"]) == [
        "",
        "features",
        *(f"features.{i}" for i in range(6)),
        "head",
        "head.0",
        "head.1",
    ]
    rows = t.set_index("module")
    assert rows.loc["features.2", "output_shape"] == (2, 8, 4, 4)
    assert rows.loc["features.5", "output_shape"] == (2, 16, 2, 2)
    assert rows.loc["head.0", "output_shape"] == (2, 64)
    assert rows.loc["", "output_shape"] == (2, 10)
    assert (t["check"] == "ok").sum() == 10 and rows.loc["", "check"] == "n/a"
    assert rows.loc["", "predicted_shape"] == "n/a"  # a custom forward: not predicted
    # params: 8*1*9+8, 16*8*9+16, 64*10+10
    assert rows.loc["features.0", "params"] == 80
    assert rows.loc["features.3", "params"] == 1168
    assert rows.loc["head.1", "params"] == 650
    assert rows.loc["", "params"] == 80 + 1168 + 650 == result.total_params
    # MACs: N * C_out * C_in * 9 * H * W
    assert rows.loc["features.0", "macs"] == 2 * 8 * 1 * 9 * 8 * 8
    assert rows.loc["features.3", "macs"] == 2 * 16 * 8 * 9 * 4 * 4
    assert rows.loc["head.1", "macs"] == 2 * 64 * 10
    assert pd.isna(rows.loc["features", "macs"])  # containers: no double counting
    assert result.total_macs == 9216 + 36864 + 1280
    assert model_flops(model, torch.randn(2, 1, 8, 8)) == 2 * result.total_macs
    # receptive field: 3, then pool adds 1, conv adds 2*2, pool adds 1*2
    rf = [rows.loc[f"features.{i}", "receptive_field"] for i in range(6)]
    assert rf == [(3, 3), (3, 3), (4, 4), (8, 8), (8, 8), (10, 10)]
    assert rows.loc["features.5", "jump"] == (4, 4)
    assert pd.isna(rows.loc["head.1", "receptive_field"])
    assert not all_hooks(model)
    text = str(result)
    assert "features.3" in text and "MISMATCH" not in text and "1,898" in text


def test_lstm_classifier_table():
    model = LSTMClassifier()
    result = summary(model, (4, 12), dtypes=torch.long)
    rows = result.to_pandas().set_index("module")
    assert rows.loc["embed", "output_shape"] == (4, 12, 16)
    # LSTM returns (output, (h, c)); output_shape is the first tensor, all are listed
    assert rows.loc["lstm", "output_shape"] == (4, 12, 64)
    assert rows.loc["lstm", "output_shapes"] == ((4, 12, 64), (2, 4, 32), (2, 4, 32))
    assert rows.loc["lstm", "check"] == "ok"
    # 2 directions x (4*32*16 + 4*32*32 + 2*4*32), two bias vectors per gate
    assert rows.loc["lstm", "params"] == 2 * (4 * 32 * 16 + 4 * 32 * 32 + 2 * 4 * 32) == 12800
    # 48 (batch x steps) x 2 directions x 4*32*(16 + 32)
    assert rows.loc["lstm", "macs"] == 48 * 2 * 4 * 32 * 48
    assert rows.loc["fc", "input_shape"] == (4, 64) and rows.loc["fc", "macs"] == 4 * 64 * 3
    assert rows["receptive_field"].isna().all()
    assert result.total_params == 50 * 16 + 12800 + 64 * 3 + 3
    tokens = torch.zeros(4, 12, dtype=torch.long)
    assert model_flops(model, tokens) == 2 * result.total_macs


def test_transformer_encoder_table():
    model = transformer()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    result = summary(model, (2, 5, 16))
    t = result.to_pandas()
    assert torch.backends.mha.get_fastpath_enabled() == fastpath
    # per layer: the layer, self_attn, 3 dropouts, 2 norms, 2 linears; plus the model
    assert len(t) == 1 + 2 * 9
    assert (t["type"] == "MultiheadAttention").sum() == 2
    assert (t["check"] == "ok").all()
    mha = t[t["module"] == "layers.0.self_attn"].iloc[0]
    assert mha["params"] == 4 * 16 * 16 + 4 * 16
    # q, k, v, out projections 4 * 10 tokens * 16 * 16, scores and weighted sum 2 * 2 * 5 * 5 * 16
    assert mha["macs"] == 4 * 10 * 16 * 16 + 2 * 2 * 5 * 5 * 16
    lin1 = t[t["module"] == "layers.1.linear1"].iloc[0]
    assert lin1["output_shape"] == (2, 5, 32) and lin1["depth"] == 2
    assert result.total_params == sum(p.numel() for p in model.parameters()) == 4448
    model.train()  # the training path has no fused kernel: FlopCounterMode sees the matmuls
    assert model_flops(model, torch.randn(2, 5, 16)) == 2 * result.total_macs
    assert not all_hooks(model)


def test_params_column_agrees_with_the_formulas():
    for model, size, kw in [
        (SmallCNN(), (1, 1, 8, 8), {}),
        (LSTMClassifier(), (2, 3), {"dtypes": [torch.long]}),
        (transformer(), (1, 3, 16), {}),
    ]:
        for row in summary(model, size, **kw).to_pandas().itertuples():
            module = model.get_submodule(row.module)
            assert param_count(module) == row.params


def test_reused_module_gets_one_row_per_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(torch.relu(self.lin(x)))

    t = summary(Twice(), (3, 4)).to_pandas()
    lin = t[t["module"] == "lin"]
    assert list(lin["call"]) == [0, 1]
    assert list(lin["macs"]) == [48, 48]


def test_mismatch_is_flagged_not_hidden():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    user = model[0].register_forward_hook(lambda m, i, o: o.reshape(-1, 2, 3))
    try:
        result = summary(model, (5, 4))
    finally:
        user.remove()
    t = result.to_pandas().set_index("module")
    assert t.loc["0", "predicted_shape"] == (5, 6)
    assert t.loc["0", "output_shape"] == (5, 2, 3)
    assert t.loc["0", "check"] == "MISMATCH"
    # the Sequential's own prediction (chained from its children) is wrong as well
    assert list(result.mismatches["module"]) == ["", "0"]
    assert "MISMATCH" in str(result) and "WARNING" in str(result)


def test_hooks_removed_and_modes_restored_after_an_exception():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.bn = nn.BatchNorm2d(2)
            self.lin = nn.Linear(5, 5)

        def forward(self, x):
            return self.lin(self.bn(self.conv(x)))  # last dim 6 != 5

    model = Broken()
    model.train()
    model.bn.eval()
    with pytest.raises(RuntimeError, match=r"lin \(Linear\)") as info:
        summary(model, (1, 1, 8, 8))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert not all_hooks(model)
    assert model.training and model.conv.training and not model.bn.training
    # eval mode by default: batch-norm statistics untouched by a successful run
    model.lin = nn.Linear(6, 5)
    before = model.bn.running_mean.clone()
    summary(model, (4, 1, 8, 8))
    assert torch.equal(model.bn.running_mean, before)
    assert not all_hooks(model)


def test_tensors_and_multiple_inputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(5, 2)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    by_shape = summary(Two(), [(4, 3), (4, 5)]).to_pandas()
    by_tensor = summary(Two(), [torch.ones(4, 3), torch.ones(4, 5)]).to_pandas()
    assert list(by_shape["output_shape"]) == list(by_tensor["output_shape"]) == [(4, 2)] * 3
    assert summary(nn.Linear(3, 2), torch.ones(3)).to_pandas()["output_shape"][0] == (2,)


def test_generated_inputs_leave_the_global_rng_alone():
    model = nn.Linear(3, 2)  # (initialising the weights draws from the global RNG)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    summary(model, (4, 3))
    assert torch.equal(torch.get_rng_state(), state)


def test_receptive_field_stops_at_a_branch():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(1, 1, 3, padding=1), nn.Conv1d(1, 1, 3, padding=1)

        def forward(self, x):
            x = self.c1(x)
            return self.c2(x + x)  # a new tensor, not a layer's output: the chain ends

    t = summary(Residual(), (1, 1, 9)).to_pandas().set_index("module")
    assert t.loc["c1", "receptive_field"] == 3
    assert pd.isna(t.loc["c2", "receptive_field"])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"input_size": "abc"}, TypeError, "input_size"),
        ({"input_size": [(2, 3), 4]}, TypeError, "input_size"),
        ({"input_size": (2, 3), "mode": "test"}, ValueError, "mode"),
        ({"input_size": [(2, 3)], "dtypes": [torch.float, torch.long]}, ValueError, "dtypes"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        summary(nn.Linear(3, 2), **kwargs)


def test_train_mode_and_forward_kwargs():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x, scale=1.0):
            return self.bn(x) * scale

    model = Scaled().eval()
    before = model.bn.running_mean.clone()
    t = summary(model, (8, 3), mode="train", forward_kwargs={"scale": 2.0}).to_pandas()
    assert not torch.equal(model.bn.running_mean, before)  # train mode: statistics updated
    assert not model.training and not model.bn.training  # and the flags restored
    assert list(t["output_shape"]) == [(8, 3), (8, 3)]


def test_an_empty_transposed_convolution_output_is_checked_ok():
    """PyTorch's oneDNN kernel returns an empty tensor here (batch 2); summary agrees."""
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, padding=(2, 0)))
    rows = summary(model, (2, 2, 2, 3)).to_pandas().set_index("module")
    assert rows.loc["0", "output_shape"] == (2, 2, 0, 5)
    assert rows.loc["0", "predicted_shape"] == (2, 2, 0, 5)
    assert rows.loc["0", "check"] == "ok"
