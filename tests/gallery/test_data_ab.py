"""The numbers behind gallery figures A1-A7 and B1-B6, against independent references.

Each script runs in fast mode (``NETVIZ_GALLERY_FAST=1``) with
``runpy.run_path``; its module-level values are checked against numbers
computed here another way: NumPy re-implementations, closed forms,
scikit-learn, or plain autograd instead of netviz's probes.
"""

from __future__ import annotations

import itertools
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


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------- A
def test_a1_no_line_classifies_xor(run):
    ns = run("A1")
    pts = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    target = np.array([0, 1, 1, 0], dtype=bool)
    # Independent: every labelling a line can produce on the 4 corners is one of the
    # 14 linearly separable dichotomies; XOR (and XNOR) are the two that are not.
    # Check with random lines (both orientations) that none reaches 4/4.
    rng = np.random.default_rng(1)
    w = rng.normal(size=(20000, 2))
    b = rng.uniform(-3, 3, size=20000)
    pred = pts @ w.T + b > 0
    best = (pred == target[:, None]).mean(axis=0).max()
    assert best == 0.75 == ns["best_accuracy"]
    for (w1, w2, b0), acc in zip(ns["example_lines"], ns["example_accuracy"]):
        assert acc == ((pts @ np.array([w1, w2]) + b0 > 0) == target).mean()


def test_a2_hidden_codes_and_outputs_match_hand_computation(run):
    ns = run("A2")
    pts = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    h1 = (pts[:, 0] + pts[:, 1] - 0.5 > 0).astype(float)
    h2 = (-pts[:, 0] - pts[:, 1] + 1.5 > 0).astype(float)
    y = (h1 + h2 - 1.5 > 0).astype(float)
    np.testing.assert_array_equal(ns["hidden"].numpy(), np.stack([h1, h2], axis=1))
    np.testing.assert_array_equal(ns["outputs"].numpy(), y)
    assert y.tolist() == [0, 1, 1, 0]  # XOR
    # The output region is the band 0.5 < x1 + x2 < 1.5 (away from the boundary lines).
    s = ns["gx1"] + ns["gx2"]
    inside = (s > 0.5 + 1e-6) & (s < 1.5 - 1e-6)
    outside = (s < 0.5 - 1e-6) | (s > 1.5 + 1e-6)
    assert (ns["region"][inside] == 1).all() and (ns["region"][outside] == 0).all()


def test_a3_perceptron_matches_numpy_reimplementation(run):
    ns = run("A3")
    x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    targets = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}
    for name, t in targets.items():
        w = np.array([0.0, 0.0, -ns["learning_rate"] / 2])  # zero weights, bias -eta/2
        errors = []
        for _ in range(ns["n_epochs"]):
            n = 0
            for xi, ti in zip(x, t):
                yi = float(w @ xi > 0)
                if yi != ti:
                    n += 1
                    w = w + ns["learning_rate"] * (ti - yi) * xi
            errors.append(n)
        assert errors == ns["errors_per_epoch"][name]
        np.testing.assert_allclose(ns["final_weights"][name].numpy(), w)
        if name != "XOR":  # no point lies on the final separating line
            assert (np.abs(x @ w) > 0.1).all(), (name, x @ w)
    assert ns["converged"] == {"AND": True, "OR": True, "XOR": False}


def test_a4_gradient_descent_reaches_least_squares(run):
    ns = run("A4")
    x = np.array([10, 2, 3.5, 1.0])
    y = np.array([10.1, 1.9, 3.4, 1.1])
    (w_lstsq,), *_ = np.linalg.lstsq(x[:, None], y, rcond=None)
    assert w_lstsq == pytest.approx(117.8 / 117.25, rel=1e-12)
    assert ns["w_final"] == pytest.approx(w_lstsq, abs=1e-9)
    assert ns["final_loss"] == pytest.approx(0.5 * np.mean((y - w_lstsq * x) ** 2), rel=1e-9)
    # First step by hand: w1 = 0 - lr * dL/dw at 0 = lr * mean(x y).
    assert ns["w_history"][1] == pytest.approx(ns["learning_rate"] * np.mean(x * y), rel=1e-12)


def test_a5_hidden_lines_and_accuracy(run):
    ns = run("A5")
    x, y = ns["x_np"], ns["y_np"]
    for h, model in ns["models"].items():
        w1 = model[0].weight.detach().double().numpy()
        b1 = model[0].bias.detach().double().numpy()
        w2 = model[2].weight.detach().double().numpy()
        b2 = model[2].bias.detach().double().numpy()
        np.testing.assert_allclose(ns["hidden_lines"][h], np.c_[w1, b1], rtol=1e-6)
        logits = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
        assert ns["accuracy"][h] == pytest.approx(((logits[:, 0] > 0) == y).mean(), abs=1 / len(y))
    # Two ReLU half-planes cannot enclose the inner circle: a band is the best they do.
    assert ns["accuracy"][2] < 0.9 < ns["accuracy"][10]


def test_a6_single_neuron_equals_unregularised_logistic_regression(run):
    from sklearn.linear_model import LogisticRegression

    ns = run("A6")
    xs = ns["x"].numpy()
    clf = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(xs, ns["labels"])
    np.testing.assert_allclose(ns["weights"], clf.coef_[0], rtol=1e-3, atol=1e-3)
    assert ns["bias"] == pytest.approx(clf.intercept_[0], abs=1e-3)
    assert ns["accuracy"] == pytest.approx(clf.score(xs, ns["labels"]))
    p = sigmoid(xs @ clf.coef_[0] + clf.intercept_[0])
    ce = -np.mean(ns["labels"] * np.log(p) + (1 - ns["labels"]) * np.log(1 - p))
    assert ns["final_loss"] == pytest.approx(ce, rel=1e-4)


def test_a7_layers_are_tanh_of_affine_maps(run):
    ns = run("A7")
    h = ns["x"].double().numpy()
    for layer in ns["hidden"]:
        lin = layer[0]
        h = np.tanh(h @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy())
    np.testing.assert_allclose(ns["last_points"].numpy(), h, atol=1e-5)
    side = h @ ns["readout_w"] + ns["readout_b"] > 0
    assert (side == (ns["y_np"] == 1)).all() and ns["accuracy"] == 1.0


# --------------------------------------------------------------------- B
def test_b1_probe_gradients_match_autograd_and_ratio(run):
    ns = run("B1")
    # Step 0 of the recorded gradient norms against plain autograd on a fresh copy.
    for name, skip in [("plain", False), ("skip connections", True)]:
        torch.manual_seed(0)
        model = ns["DeepMLP"](skip)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ns["x"]), ns["y"])
        loss.backward()
        table = ns["grad_table"][name]
        for layer in ns["layer_order"]:
            mod = model.get_submodule(layer)
            expected = math.sqrt(float(mod.weight.grad.pow(2).sum() + mod.bias.grad.pow(2).sum()))
            assert table.loc[0, layer] == pytest.approx(expected, rel=1e-5)
    # sigma' <= 1/4: five sigmoid layers between hidden.0 and the output shrink
    # the plain net's gradient by orders of magnitude; the skips do not.
    assert ns["grad_ratio"]["plain"] < 1e-3
    assert ns["grad_ratio"]["plain"] * 100 < ns["grad_ratio"]["skip connections"]


def test_b2_chain_gradient_matches_closed_form(run):
    ns = run("B2")
    x = ns["x"].detach().numpy()
    s1 = sigmoid(x)
    s2 = sigmoid(s1)
    s3 = sigmoid(s2)
    closed = s3 * (1 - s3) * s2 * (1 - s2) * s1 * (1 - s1)  # chain rule, unit weights
    np.testing.assert_allclose(ns["chain_grad"].numpy(), closed, rtol=1e-12, atol=1e-15)
    z = ns["z"].detach().numpy()
    np.testing.assert_allclose(ns["sigma_prime"].numpy(), sigmoid(z) * (1 - sigmoid(z)), rtol=1e-12)
    assert ns["sigma_prime_max"] == 0.25 and ns["chain_bound"] == 1 / 64
    # Stacked sigmoids: the largest derivative is at x = 0 for n = 1 only; the bound holds.
    assert (ns["max_grad_per_depth"] <= 0.25 ** ns["depths"] + 1e-15).all()


def test_b3_derivatives_match_finite_differences(run):
    ns = run("B3")
    z = ns["z"].detach().numpy()
    eps = 1e-6
    for name, act in ns["activations"].items():
        f = lambda v, act=act: act(torch.tensor(v, dtype=torch.float64)).numpy()  # noqa: E731
        fd = (f(z + eps) - f(z - eps)) / (2 * eps)
        keep = np.abs(z) > 1e-3  # ReLU-type kinks at 0
        np.testing.assert_allclose(ns["derivatives"][name][keep], fd[keep], atol=1e-6, err_msg=name)
    assert ns["final_loss"]["sigmoid"] > math.log(2) - 1e-3  # never left the chance plateau


def test_b4_activation_stats_match_the_activations_and_theory(run):
    ns = run("B4")
    small, xavier, he = ns["inits"]
    # activation_stats' std (population) against the captured tanh activations.
    for init in ns["inits"]:
        acts = ns["histograms"]["tanh", init]
        expected = [float(a.double().std(unbiased=False)) for a in acts.values()]
        np.testing.assert_allclose(ns["activation_std"]["tanh", init], expected, rtol=1e-4)
    # Theory: ReLU halves E[x^2] per layer under Xavier (var 1/n); He (var 2/n) keeps it.
    assert ns["std_ratio"]["ReLU", xavier] == pytest.approx(0.5 ** (9 / 2), rel=0.5)
    assert ns["std_ratio"]["ReLU", he] == pytest.approx(1.0, abs=0.5)
    # tanh with N(0, 0.01^2): each layer scales the std by about 0.01 * sqrt(256) = 0.16.
    assert ns["std_ratio"]["tanh", small] == pytest.approx(0.16**9, rel=0.5)


def test_b5_timestep_grad_matches_manual_bptt(run):
    ns = run("B5")
    for name, net in ns["nets"].items():
        if not isinstance(net, torch.nn.RNN):
            continue
        w_ih, w_hh = net.weight_ih_l0.detach(), net.weight_hh_l0.detach()
        b = (net.bias_ih_l0 + net.bias_hh_l0).detach()
        h = torch.zeros(ns["batch"], ns["hidden"], requires_grad=True)
        states = []
        for x_t in ns["inputs"]:
            h = torch.tanh(x_t @ w_ih.T + h @ w_hh.T + b)
            h.retain_grad()
            states.append(h)
        (h @ ns["readout"]).sum().backward()
        manual = np.array([float(s.grad.norm()) for s in states])
        np.testing.assert_allclose(ns["grad_norms"][name], manual, rtol=1e-4)
    seq = ns["seq_len"]
    assert ns["decay"]["RNN, $s = 0.8$ (vanishing)"] == pytest.approx(0.8 ** (seq - 1), rel=0.05)
    assert ns["decay"]["RNN, $s = 1.2$ (exploding)"] == pytest.approx(1.2 ** (seq - 1), rel=0.05)


def test_b6_block_gradients_match_autograd(run):
    ns = run("B6")
    xb, yb = ns["batches"][0]
    for name, residual in [("plain", False), ("residual", True)]:
        net = ns["DeepNet"](residual)
        net.load_state_dict(ns["nets"][name].state_dict())
        net.zero_grad()
        torch.nn.functional.mse_loss(net(xb), yb).backward()
        rec = ns["records"][name]
        step0 = rec[rec.step == 0].set_index("module").value
        for i, block in enumerate(net.blocks):
            fc1 = block.fc1
            expected = math.sqrt(float(fc1.weight.grad.pow(2).sum() + fc1.bias.grad.pow(2).sum()))
            assert step0[f"blocks.{i}"] == pytest.approx(expected, rel=1e-4)
    assert ns["first_to_last"]["plain"] < 1e-3 < 0.1 < ns["first_to_last"]["residual"]


def test_every_ab_script_is_tested_here():
    ids = {p.name.split("_")[0] for p in GALLERY.glob("[AB][0-9]*_*.py")}
    tested = {f"{c}{n}" for c, n in itertools.product("A", range(1, 8))}
    tested |= {f"B{n}" for n in range(1, 7)}
    assert ids == tested
