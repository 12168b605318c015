"""The data behind gallery figures C1-C7 and D1-D8, against independent references.

Each test runs one script in fast mode (``runpy``, same process) and checks the
module-level values the figure is drawn from with a computation that does not
reuse the script's code path: hand-written update rules in NumPy, closed
forms, ``np.polyfit`` / scikit-learn, SciPy's correlate, hand-built matrices,
or PyTorch's own modules.
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


def quad_grad(w: np.ndarray) -> np.ndarray:
    """Gradient of L(w) = 3 w1^2 + w2^2, by hand."""
    return np.array([6 * w[0], 2 * w[1]])


# --- C: optimisation ------------------------------------------------------------------


def test_c1_gradient_descent_paths_match_hand_updates(run):
    ns = run("C1")
    for name, lr in ns["learning_rates"].items():
        w = np.array(ns["start"], dtype=float)
        path = [w.copy()]
        for _ in range(ns["steps"]):
            w = w - lr * quad_grad(w)
            path.append(w.copy())
        np.testing.assert_allclose(ns["paths"][name], np.array(path), rtol=1e-12, atol=1e-14)
    # lr > 1/3 diverges along w1: |1 - 6 lr| > 1; the good rate 1/4 contracts both axes by 1/2.
    large = ns["learning_rates"]["too large"]
    assert large > 1 / 3 and abs(1 - 6 * large) > 1
    assert ns["update_factors"]["good"] == (-0.5, 0.5)
    w1 = np.abs(ns["paths"]["too large"][:, 0])
    np.testing.assert_allclose(w1[1:] / w1[:-1], abs(1 - 6 * large))


def _adam(w, lr, steps, b1=0.9, b2=0.999, eps=1e-8):
    m, v, path = np.zeros(2), np.zeros(2), [w.copy()]
    for t in range(1, steps + 1):
        g = quad_grad(w)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        path.append(w.copy())
    return np.array(path)


def test_c2_optimizer_paths_match_the_notes_update_rules(run):
    ns = run("C2")
    start, steps = np.array(ns["start"], dtype=float), ns["steps"]
    names = list(ns["optimizers"])
    # Momentum as in the notes: m_t = eta g + mu m_{t-1}, w_{t+1} = w_t - m_t.
    lr, mu = ns["lr_sgd"], ns["momentum"]
    w, m, path = start.copy(), np.zeros(2), [start.copy()]
    for _ in range(steps):
        m = lr * quad_grad(w) + mu * m
        w = w - m
        path.append(w.copy())
    np.testing.assert_allclose(ns["paths"][names[1]], np.array(path), rtol=1e-10, atol=1e-12)
    # AdaGrad: r_t = r_{t-1} + g^2, w -= eta g / (sqrt(r_t) + eps).
    w, r, path = start.copy(), np.zeros(2), [start.copy()]
    for _ in range(steps):
        g = quad_grad(w)
        r = r + g**2
        w = w - 0.5 * g / (np.sqrt(r) + 1e-10)
        path.append(w.copy())
    np.testing.assert_allclose(ns["paths"][names[2]], np.array(path), rtol=1e-9, atol=1e-12)
    # RMSProp: r_t = rho r_{t-1} + (1 - rho) g^2, w -= eta g / (sqrt(r_t) + eps).
    rho = ns["rmsprop_alpha"]
    w, r, path = start.copy(), np.zeros(2), [start.copy()]
    for _ in range(steps):
        g = quad_grad(w)
        r = rho * r + (1 - rho) * g**2
        w = w - 0.1 * g / (np.sqrt(r) + 1e-8)
        path.append(w.copy())
    np.testing.assert_allclose(ns["paths"][names[3]], np.array(path), rtol=1e-9, atol=1e-12)
    # Adam, bias-corrected (eqs. 43-47 of the notes, with the usual 1 - beta^t).
    np.testing.assert_allclose(
        ns["paths"][names[4]], _adam(start, 0.25, steps), rtol=1e-9, atol=1e-12
    )


def test_c3_schedules_match_closed_forms_and_noise_floor(run):
    ns = run("C3")
    t = np.arange(ns["epochs"])
    lr0 = 0.1
    expected = {
        "constant": np.full(len(t), lr0),
        "step": [lr0 * 0.5 ** (e // 25) for e in t],
        "exponential": lr0 * np.exp(-0.03 * t),
        "1/t": lr0 / (1 + 0.1 * t),
    }
    for name, lrs in expected.items():
        np.testing.assert_allclose(ns["learning_rates"][name], lrs, rtol=1e-9)
    # Stationary E[L] of constant-rate SGD with unit gradient noise, coordinate by
    # coordinate: w <- (1 - eta h) w - eta xi  =>  Var w = eta^2 / (1 - (1 - eta h)^2).
    floor = sum(h / 2 * lr0**2 / (1 - (1 - lr0 * h) ** 2) for h in (6.0, 2.0))
    assert ns["noise_floor"] == pytest.approx(floor)
    assert np.mean(ns["noisy_losses"]["constant"][-30:]) == pytest.approx(floor, rel=0.25)


def test_c4_low_rate_decreases_linearly_and_very_high_blows_up(run):
    ns = run("C4")
    curves = ns["loss_curves"]
    assert curves["good"][0] == pytest.approx(math.log(10), abs=0.1)  # 10 balanced classes
    assert max(curves["very high"]) > 5 * math.log(10)
    low = curves["low"]
    steps = np.arange(len(low))
    slope, intercept = np.polyfit(steps, low, 1)
    residual = low - (slope * steps + intercept)
    assert slope < 0 and np.abs(residual).max() < 0.05 * (low[0] - low[-1] + 1e-12) + 0.05
    assert min(c[-1] for c in curves.values()) == curves["good"][-1]


def test_c5_split_noise_and_symptoms(run):
    from sklearn.datasets import load_digits

    ns = run("C5")
    _, labels = load_digits(return_X_y=True)
    train_idx, val_idx = ns["train_idx"].numpy(), ns["val_idx"].numpy()
    assert len(train_idx) == 150 and len(val_idx) == 500
    assert not set(train_idx) & set(val_idx)
    assert ns["y_val"].tolist() == labels[val_idx].tolist()  # validation labels are clean
    wrong = (ns["y_train"].numpy() != labels[train_idx]).mean()
    assert 0.1 < wrong < 0.3  # 25 % relabelled at random (some keep their label by chance)
    final_train = {n: c[-1] for n, c in ns["train_loss"].items()}
    final_val = {n: c[-1] for n, c in ns["val_loss"].items()}
    gap = {n: final_val[n] - final_train[n] for n in final_val}
    assert gap["overfitting"] > 3 * max(gap["underfitting"], gap["+ weight decay"], 0.1)
    assert gap["+ weight decay"] < gap["overfitting"] and gap["+ dropout"] < gap["overfitting"]


def test_c6_fits_match_polyfit_and_sklearn_ridge(run):
    from sklearn.linear_model import Ridge

    ns = run("C6")
    x = ns["x_train"].numpy()
    t = ns["t_train"].numpy()
    np.testing.assert_allclose(x, np.linspace(0, 1, 10))
    for m in (0, 1, 3):
        reference = np.polyfit(x, t, m)[::-1]  # polyfit: highest power first
        np.testing.assert_allclose(ns["weights"][m].numpy(), reference, rtol=1e-7, atol=1e-9)
    # M = 9 through 10 distinct points: the interpolating polynomial.
    np.testing.assert_allclose(np.polyval(ns["weights"][9].numpy()[::-1], x), t, atol=1e-6)
    assert ns["train_rms"][9] < 1e-6
    # Ridge with the penalty on every weight (including w0), as in the notes' formula.
    X = np.vander(x, 10, increasing=True)
    lam = math.exp(-18)
    ridge = Ridge(alpha=lam, fit_intercept=False, solver="svd").fit(X, t)
    np.testing.assert_allclose(ns["ridge_weights"].numpy(), ridge.coef_, rtol=1e-5, atol=1e-6)
    rms_test = [
        np.sqrt(
            np.mean(
                (
                    np.polyval(ns["weights"][m].numpy()[::-1], ns["x_test"].numpy())
                    - ns["t_test"].numpy()
                )
                ** 2
            )
        )
        for m in (3, 9)
    ]
    np.testing.assert_allclose(rms_test, [ns["test_rms"][3], ns["test_rms"][9]], rtol=1e-6)


def test_c7_peak_at_interpolation_threshold(run):
    ns = run("C7")
    counts, n = ns["feature_counts"], ns["n_train"]
    assert n in counts.tolist()
    assert 0.75 * n <= ns["peak_features"] <= 1.25 * n
    # Below the threshold least squares cannot interpolate; above it, it does.
    assert np.all(ns["median_train"][counts < 0.75 * n] > 1e-3)
    assert np.all(ns["median_train"][counts > 1.5 * n] < 1e-12)
    assert counts[np.argmax(ns["median_norm"])] == ns["peak_features"]


# --- D: convolutions --------------------------------------------------------------------


def test_d1_conv1d_is_correlation(run):
    from scipy.signal import correlate

    ns = run("D1")
    h = ns["pattern"].numpy()
    for name, x in ns["signals"].items():
        ref = correlate(x.numpy(), h, mode="valid")
        np.testing.assert_allclose(ns["correlations"][name].numpy(), ref, atol=1e-12)
        np.testing.assert_allclose(
            ns["convolutions"][name].numpy(), np.convolve(x.numpy(), h, "valid"), atol=1e-12
        )
        assert int(np.argmax(ref)) == ns["positions"][name]
    w = ns["dense_weights"].numpy()
    for name, x in ns["signals"].items():
        assert ns["inner_products"][name] == pytest.approx(float(x.numpy() @ w))


def test_d2_output_sizes_and_footprints(run):
    ns = run("D2")
    for title, W, K, S, P, D in ns["cases"]:
        expected = (W + 2 * P - D * (K - 1) - 1) // S + 1
        assert ns["output_sizes"][title] == expected
        conv = torch.nn.Conv2d(1, 1, K, stride=S, padding=P, dilation=D)
        assert conv(torch.zeros(1, 1, W, W)).shape[-1] == expected
        first, second = ns["footprints"][title]
        taps = np.arange(K) * D
        ref = np.zeros_like(first)
        ref[np.ix_(taps, taps)] = True
        assert np.array_equal(first, ref)
        ref_next = np.zeros_like(second)
        ref_next[np.ix_(taps, taps + S)] = True
        assert np.array_equal(second, ref_next)
    assert [ns["output_sizes"][c[0]] for c in ns["cases"]] == [3, 5, 4, 3]


def test_d3_toeplitz_matrix_by_hand(run):
    from scipy.signal import correlate2d

    ns = run("D3")
    x = np.array([[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]])
    u = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]])
    U = np.zeros((4, 16))
    for i in range(2):
        for j in range(2):
            for a in range(3):
                for b in range(3):
                    U[2 * i + j, 4 * (i + a) + (j + b)] = u[a, b]
    np.testing.assert_array_equal(ns["toeplitz"].numpy(), U)
    assert correlate2d(x, u, mode="valid").tolist() == [[122, 148], [126, 134]]
    assert ns["toeplitz_product"].tolist() == [122, 148, 126, 134]
    assert ns["conv_result"].tolist() == [[122, 148], [126, 134]]


def test_d4_transposed_convolution_by_hand(run):
    ns = run("D4")
    inp = np.array([[0, 1], [2, 3]])
    k = np.array([[0, 1], [2, 3]])
    out = np.zeros((3, 3))
    for r in range(2):
        for c in range(2):
            out[r : r + 2, c : c + 2] += inp[r, c] * k  # scatter one scaled kernel copy
    assert out.tolist() == [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
    assert ns["transposed"].tolist() == out.tolist()
    assert ns["matrix_product"].tolist() == out.tolist()
    # 1-D: insert zeros, then a full convolution with h.
    x, h = np.array([2.0, 4.0, 1.0, 3.0]), np.array([0.5, 1.0, 0.5])
    up = np.zeros(7)
    up[::2] = x
    np.testing.assert_allclose(ns["upsampled"].numpy(), np.convolve(up, h, "full"))


def test_d5_overlap_counts_by_hand(run):
    ns = run("D5")

    def scatter(n, k, s):
        out = np.zeros(((n - 1) * s + k,) * 2)
        for r in range(n):
            for c in range(n):
                out[r * s : r * s + k, c * s : c * s + k] += 1
        return out

    np.testing.assert_array_equal(ns["deconv3"].numpy(), scatter(6, 3, 2))
    np.testing.assert_array_equal(ns["deconv4"].numpy(), scatter(6, 4, 2))
    rc = ns["resize_conv"].numpy()
    assert rc.shape == (12, 12) and np.all(rc[1:-1, 1:-1] == 9)
    assert len(np.unique(ns["deconv3"].numpy()[2:-2, 2:-2])) == 3  # 1, 2, 4: a checkerboard


def test_d6_block_diagonal_connectivity(run):
    ns = run("D6")
    for g, conv in ns["convs"].items():
        per = 4 // g
        expected = np.array([[o // per == i // per for i in range(4)] for o in range(4)])
        assert np.array_equal(ns["connectivity"][g], expected)
        assert ns["n_params"][g] == sum(p.numel() for p in conv.parameters())
        assert conv.weight.shape == (4, per, 3)
    assert ns["convs"][4].groups == 4  # depthwise: groups == in_channels


def test_d7_pooling_values_and_gradient_routing(run):
    ns = run("D7")
    img = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=float)
    windows = img.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    assert ns["max_out"].tolist() == windows.max(-1).tolist() == [[6, 8], [3, 4]]
    assert ns["avg_out"].tolist() == windows.mean(-1).tolist()
    expected_grad = np.zeros((4, 4))
    g = ns["upstream"].numpy()
    for r in range(2):
        for c in range(2):
            a = int(np.argmax(img[2 * r : 2 * r + 2, 2 * c : 2 * c + 2]))
            expected_grad[2 * r + a // 2, 2 * c + a % 2] = g[r, c]
    np.testing.assert_array_equal(ns["max_grad"].numpy(), expected_grad)
    det, sh = ns["detector"].numpy(), ns["shifted"].numpy()
    padded = np.pad(det, 1, constant_values=-np.inf)
    padded_sh = np.pad(sh, 1, constant_values=-np.inf)
    mp = np.array([padded[i : i + 3].max() for i in range(len(det))])
    mp_sh = np.array([padded_sh[i : i + 3].max() for i in range(len(sh))])
    assert np.all(det != sh)
    assert (mp != mp_sh).sum() == int(ns["max_changed"].sum()) <= len(det) // 2


def test_d8_receptive_field_closed_forms(run):
    ns = run("D8")
    depths = ns["depths"]
    assert ns["predicted_size"]["plain"] == [2 * d + 1 for d in depths]
    for kind in ("stride 2", "dilation 1, 2, 4, ..."):
        assert ns["predicted_size"][kind] == [2 ** (d + 1) - 1 for d in depths]
    for kind in ns["kinds"]:
        assert ns["measured_size"][kind] == ns["predicted_size"][kind]
    # Stride 2: output unit 1 starts 2^L cells after unit 0 (the jump), which starts at 0.
    assert ns["measured_start"]["stride 2"] == [2**d for d in depths]
    assert ns["measured_start"]["plain"] == [1] * len(depths)
