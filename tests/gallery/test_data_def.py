"""The data behind gallery figures D9-D13, E1-E8 and F1, against independent references.

Each test runs one script in fast mode (``runpy``, same process) and checks the
module-level values the figure is drawn from with a computation that does not
reuse the script's code: closed forms, NumPy/SciPy, scikit-learn, or PyTorch's
own modules.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

GALLERY = Path(__file__).resolve().parents[2] / "netviz" / "gallery" / "scripts"


@pytest.fixture
def run(run_gallery):
    """``run("A2")``: the namespace of that gallery script run in fast mode (tests/conftest.py)."""
    return run_gallery


# --- E: sequences and attention ------------------------------------------------------


def test_e3_attention_rows_pick_and_average_values(run):
    ns = run("E3")
    v1, v2, v3, v4 = ns["values"].tolist()
    expected = [v3, [(a + b) / 2 for a, b in zip(v3, v4)], v2, v1]
    assert ns["outputs"].tolist() == expected
    assert ns["attention"].tolist() == [[0, 0, 1, 0], [0, 0, 0.5, 0.5], [0, 1, 0, 0], [1, 0, 0, 0]]


def test_e4_scaled_dot_product_numbers(run):
    ns = run("E4")
    assert ns["scores"].tolist() == [112.0, 96.0]
    assert ns["scaled_scores"].tolist() == [14.0, 12.0]
    p = 1 / (1 + math.exp(-(14 - 12)))  # two-way softmax = logistic of the difference
    assert ns["weights"].tolist() == pytest.approx([p, 1 - p], abs=1e-12)
    assert (round(p, 2), round(1 - p, 2)) == (0.88, 0.12)
    assert ns["unscaled_weights"][1].item() == pytest.approx(
        math.exp(-16) / (1 + math.exp(-16)), rel=1e-9
    )


def test_e5_score_std_grows_like_sqrt_d_without_scaling(run):
    ns = run("E5")
    dims = ns["dims"]
    assert dims == [2**p for p in range(1, 11)]
    # q.k of independent standard normals has variance d
    ratios = np.array(ns["score_std"]["unscaled"]) / np.sqrt(dims)
    assert np.allclose(ratios, 1, atol=0.15)
    assert np.allclose(ns["score_std"]["scaled"], 1, atol=0.15)
    ln16 = math.log(16)
    assert all(
        0 <= h <= ln16 + 1e-9 for kind in ("scaled", "unscaled") for h in ns["entropy"][kind]
    )
    assert ns["entropy"]["unscaled"][-1] < ns["entropy"]["unscaled"][0]


def test_e6_encodings_match_the_notes_formulas(run):
    ns = run("E6")
    pe_sin, pe_sincos = ns["sin_only"].double().numpy(), ns["sincos"].double().numpy()
    assert pe_sin.shape == (50, 128) and pe_sincos.shape == (50, 20)
    for t in (0, 1, 7, 49):
        for k in (0, 1, 5, 64, 127):  # notes 001, columns from 0
            assert pe_sin[t, k] == pytest.approx(math.sin(t / 10000 ** (k / 128)), abs=1e-6)
        for k in range(10):  # notes 002: (sin w_k t, cos w_k t) interleaved
            w = 1 / 10000 ** (2 * k / 20)
            assert pe_sincos[t, 2 * k] == pytest.approx(math.sin(w * t), abs=1e-6)
            assert pe_sincos[t, 2 * k + 1] == pytest.approx(math.cos(w * t), abs=1e-6)
    sim = ns["sincos_similarity"].numpy()
    assert np.allclose(np.diag(sim), 10.0, atol=1e-5)  # sin^2 + cos^2 summed over 10 pairs


def test_e1_receptive_field_and_chance_beyond_it(run):
    ns = run("E1")
    # two kernel-3 convolutions and a 1x1: 1 + 2 + 2 = 5 input steps
    assert ns["cnn_receptive_field"] == 5
    t = ns["t_probe"]
    assert ns["seen_inputs"] == [t - 4, t - 3, t - 2, t - 1, t]
    for tau, acc in zip(ns["taus"], ns["cnn_accuracy"].tolist()):
        if tau >= 5:
            assert abs(acc - 0.5) < 0.05
    # the targets are XOR(x_t, x_{t-tau}), computed here directly
    x, y = ns["x_test"], ns["y_test"]
    t0 = ns["t0"]
    for j, tau in enumerate(ns["taus"]):
        assert torch.equal(
            y[:, :, j], (x[:, t0:].long() ^ x[:, t0 - tau : x.shape[1] - tau].long()).float()
        )


def test_e2_recomputed_gates_reproduce_torch(run):
    ns = run("E2")
    example = ns["example"]
    with torch.no_grad():
        h_lstm, _ = ns["lstm_model"].rnn(example[None])
        h_gru, _ = ns["gru_model"].rnn(example[None])
    assert torch.allclose(ns["lstm_trace"]["h"], h_lstm[0], atol=1e-6)
    assert torch.allclose(ns["gru_trace"]["h"], h_gru[0], atol=1e-6)
    # h_t = o_t * tanh(c_t)
    trace = ns["lstm_trace"]
    assert torch.allclose(
        trace["h"], trace["output gate o"] * torch.tanh(trace["cell c"]), atol=1e-7
    )
    for key in ("update gate z", "reset gate r"):
        assert ns["gru_trace"][key].min() > 0 and ns["gru_trace"][key].max() < 1


def test_e7_attention_rows_and_causal_mask(run):
    ns = run("E7")
    L = ns["seq_len"]
    expected_mask = torch.zeros(L, L)
    for i in range(L):
        for j in range(i + 1, L):
            expected_mask[i, j] = float("-inf")
    assert torch.equal(ns["causal_mask"], expected_mask)
    causal = ns["causal_heads"]
    for i in range(L):
        assert float(causal[:, i, i + 1 :].abs().sum()) == 0.0
    assert torch.allclose(ns["heads"].sum(-1), torch.ones_like(ns["heads"][..., 0]), atol=1e-5)
    # the capture equals nn.MultiheadAttention's own averaged-off weights
    model = ns["model"]
    attn = model.encoder.layers[0].self_attn
    x = model.embed(ns["test_tokens"][:1]) + model.positions
    with torch.no_grad():
        _, w = attn(x, x, x, need_weights=True, average_attn_weights=False)
    assert torch.allclose(w[0], ns["heads"], atol=1e-5)
    # the masked panel comes from the model trained with the mask
    causal = ns["causal_model"]
    attn = causal.encoder.layers[0].self_attn
    x = causal.embed(ns["test_tokens"][:1]) + causal.positions
    with torch.no_grad():
        _, w = attn(x, x, x, attn_mask=ns["causal_mask"], average_attn_weights=False)
    assert torch.allclose(w[0], ns["causal_heads"], atol=1e-5)
    assert len(set(ns["labels"])) == L  # tick labels are unique (position:digit)


def test_e7_token_attributions_are_captums_integrated_gradients(run):
    from captum.attr import IntegratedGradients

    ns = run("E7")
    model, seq = ns["model"].eval(), ns["sequence"]
    embedded = model.embed(seq).detach()
    for position in (0, 5):

        def score(e, position=position):
            return model.out(model.encoder(e + model.positions))[:, position]

        with torch.no_grad():
            target = int(score(embedded).argmax())
        attr, delta = IntegratedGradients(score).attribute(
            embedded, target=target, n_steps=32, return_convergence_delta=True
        )
        assert torch.allclose(ns["token_attr"][position], attr[0].sum(-1), atol=1e-5)
        with torch.no_grad():
            gain = score(embedded)[0, target] - score(torch.zeros_like(embedded))[0, target]
        # completeness: the token scores add up to f(x) - f(0) up to Captum's delta
        assert float(attr.sum()) == pytest.approx(float(gain + delta), abs=1e-4)


def test_e8_alpha_is_the_softmax_of_the_notes_formula(run):
    ns = run("E8")
    model, x = ns["model"], ns["x_test"]
    with torch.no_grad():
        h = torch.tanh(x @ model.encoder[0].weight.T + model.encoder[0].bias)
        u = torch.tanh(h @ model.pool.mlp.weight.T + model.pool.mlp.bias)
        scores = u @ model.pool.u_w
        alpha = torch.exp(scores) / torch.exp(scores).sum(dim=1, keepdim=True)
    assert torch.allclose(ns["alpha_after"], alpha, atol=1e-6)
    assert torch.allclose(ns["alpha_after"].sum(1), torch.ones(len(x)), atol=1e-6)
    flags = x[torch.arange(len(x)), ns["pos_test"], ns["n_classes"]]
    assert flags.mean() > 0.5  # the flag channel is set at the labelled position


# --- F: representation learning --------------------------------------------------------


def test_f1_errors_are_mean_squared_errors(run):
    ns = run("F1")
    images, noisy = ns["images"].numpy(), ns["noisy_images"].numpy()
    assert images.shape == (1797, 64) and images.min() == 0.0 and images.max() == 1.0
    assert ns["noisy_input_mse"] == pytest.approx(
        float(np.mean((np.clip(noisy, 0, 1) - images) ** 2)), rel=1e-5
    )
    assert ns["dae_noisy_mse"] == pytest.approx(
        float(np.mean((ns["dae_from_noisy"].numpy() - images) ** 2)), rel=1e-5
    )
    assert np.std(noisy - images) == pytest.approx(ns["noise_std"], rel=0.02)
    assert ns["ae_codes"].shape == (1797, 2)


def test_f1_the_digits_cnn_reads_most_denoised_reconstructions(run):
    from _digits import load_digits_data, train_digits_cnn
    from sklearn.linear_model import LogisticRegression

    ns = run("F1")
    labels = ns["labels"].numpy()
    assert ns["denoiser"].encoder[-1].out_features == 16  # reconstructions: the wide code
    assert ns["dae_codes"].shape == (1797, 2)  # scatter: the 2-D code
    # The D9/D12 CNN, trained here on its own split, reads the reconstructions.
    cnn, _, _ = train_digits_cnn(steps=150)
    with torch.no_grad():
        read = cnn(ns["dae_from_noisy"].reshape(-1, 1, 8, 8)).argmax(1).numpy()
        read_ae = cnn(ns["ae_from_noisy"].reshape(-1, 1, 8, 8)).argmax(1).numpy()
    assert np.mean(read == labels) > 0.6  # most, even in fast mode
    assert np.mean(read == labels) > np.mean(read_ae == labels)
    assert np.mean(read == labels) == pytest.approx(ns["cnn_accuracy"]["denoising AE"])
    # An independent reader (logistic regression on the clean training split) agrees.
    data = load_digits_data()
    clf = LogisticRegression(max_iter=2000).fit(data.x_train.flatten(1).numpy(), data.y_train)
    assert np.mean(clf.predict(ns["dae_from_noisy"].numpy()) == labels) > 0.6


def test_f1_centroid_labels_never_overlap(run):
    ns = run("F1")
    fig = ns["fig"]
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    for name, texts in ns["centre_labels"].items():
        assert [t.get_text() for t in texts] == [str(c) for c in range(10)]
        boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in texts]
        for i in range(10):
            for j in range(i + 1, 10):
                a, b = boxes[i], boxes[j]
                overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
                overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
                assert overlap_x <= 1 or overlap_y <= 1, (name, i, j)


# --- D: CNN figures --------------------------------------------------------------------


def test_d9_first_layer_output_is_a_cross_correlation(run):
    from scipy.signal import correlate2d

    ns = run("D9")
    conv = ns["model"][0]
    image = np.pad(ns["digit"][0, 0].numpy().astype(np.float64), 1)
    weights = conv.weight.detach().double().numpy()
    bias = conv.bias.detach().double().numpy()
    for c in range(8):
        expected = correlate2d(image, weights[c, 0], mode="valid") + bias[c]
        assert np.allclose(ns["activations"]["0"][0, c].numpy(), expected, atol=1e-5)
    assert torch.equal(ns["first_filters"], conv.weight.detach())
    assert tuple(ns["activations"]["4"].shape) == (1, 16, 4, 4)


def test_d10_batch_norm_scale_is_that_of_a_rectified_standard_normal(run):
    ns = run("D10")
    # E[relu(z)^2] - E[relu(z)]^2 for z ~ N(0, 1): 1/2 - 1/(2 pi)
    expected = math.sqrt(0.5 - 1 / (2 * math.pi))
    assert ns["bn_std_first"] == pytest.approx([expected] * ns["depth"], abs=0.08)
    # the records' std at step 0 of the first layer, recomputed from the same batch
    model = ns["make_mlp"](False)
    idx = torch.randint(
        0, len(ns["inputs"]), (ns["batch_size"],), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        first_relu = torch.relu(model[0](ns["inputs"][idx]))
    assert ns["plain_std_first"][0] == pytest.approx(
        float(first_relu.std(unbiased=False)), rel=1e-4
    )


def test_d11_groups_follow_the_lecture_definitions(run):
    ns = run("D11")
    N, C = ns["N"], ns["C"]
    pn, pc, _, _ = ns["probe"]
    size = C // ns["n_groups"]
    rule = {
        "Batch norm": lambda n, c: c == pc,
        "Layer norm": lambda n, c: n == pn,
        "Instance norm": lambda n, c: n == pn and c == pc,
        "Group norm": lambda n, c: n == pn and c // size == pc // size,
    }
    for name, group in ns["groups"].items():
        for n in range(N):
            for c in range(C):
                assert bool(group[n, c].all()) == rule[name](n, c), (name, n, c)
                assert bool(group[n, c].any()) == rule[name](n, c), (name, n, c)


def test_d12_confusion_matrix_matches_scikit_learn(run):
    from sklearn.metrics import confusion_matrix

    ns = run("D12")
    labels, predictions = ns["labels"].numpy(), ns["predictions"].numpy()
    assert np.array_equal(
        ns["confusion"].numpy(), confusion_matrix(labels, predictions, labels=range(10))
    )
    assert ns["test_accuracy"] == pytest.approx(float(np.mean(labels == predictions)))


def test_d13_integrated_gradients_are_complete(run):
    ns = run("D13")
    model, inputs, target = ns["model"], ns["inputs"].detach(), ns["predicted"]
    with torch.no_grad():
        gain = (
            model(inputs)[torch.arange(len(target)), target]
            - model(torch.zeros_like(inputs))[torch.arange(len(target)), target]
        )
    assert torch.allclose(ns["integrated_gradients"].sum(dim=(1, 2, 3)), gain, rtol=0.02, atol=0.05)
    assert float(ns["saliency"].min()) >= 0.0


def test_d13_maps_equal_captums_own(run):
    from captum.attr import IntegratedGradients, LayerGradCam, Saliency

    ns = run("D13")
    model, inputs, target = ns["model"], ns["inputs"].detach(), ns["predicted"]
    sal = Saliency(model).attribute(inputs.clone().requires_grad_(), target=target)
    assert torch.allclose(ns["saliency"], sal, atol=1e-6)
    ig = IntegratedGradients(model).attribute(inputs, target=target, n_steps=50)
    assert torch.allclose(ns["integrated_gradients"], ig, atol=1e-5)
    cam = LayerGradCam(model, model[2]).attribute(inputs, target=target, relu_attributions=True)
    assert torch.allclose(ns["cam"].layer_attr, cam, atol=1e-6)
