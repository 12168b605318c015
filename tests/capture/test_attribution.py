"""netviz.attribution against Captum's own classes, completeness, Grad-CAM
localisation, model state, in-place ReLU, and the missing-Captum error."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

import netviz
from netviz.capture.attribution import METHODS, Attribution

captum_attr = pytest.importorskip("captum.attr")


def small_cnn(inplace: bool = False, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.Flatten(),
        nn.Linear(6 * 8 * 8, 3),
    )


@pytest.fixture
def x():
    return torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_every_method_equals_captum_for_the_same_arguments(x):
    model = small_cnn().eval()
    t = torch.tensor([0, 2, 1])
    base = torch.full_like(x, 0.25)
    cases = {
        "saliency": (
            {"abs": False},
            lambda: captum_attr.Saliency(model).attribute(
                x.clone().requires_grad_(), target=t, abs=False
            ),
        ),
        "integrated_gradients": (
            {"baselines": base, "n_steps": 20, "integration": "riemann_trapezoid"},
            lambda: captum_attr.IntegratedGradients(model).attribute(
                x, baselines=base, target=t, n_steps=20, method="riemann_trapezoid"
            ),
        ),
        "input_x_gradient": (
            {},
            lambda: captum_attr.InputXGradient(model).attribute(
                x.clone().requires_grad_(), target=t
            ),
        ),
        "occlusion": (
            {"window": (1, 2, 2), "strides": (1, 2, 2), "baselines": 0.5},
            lambda: captum_attr.Occlusion(model).attribute(
                x, sliding_window_shapes=(1, 2, 2), strides=(1, 2, 2), baselines=0.5, target=t
            ),
        ),
    }
    for method, (kwargs, reference) in cases.items():
        res = netviz.attribution(model, x, t, method, **kwargs)
        expected = reference()
        assert isinstance(res, Attribution) and res.method == method
        assert res.attr.shape == x.shape, method
        torch.testing.assert_close(res.attr, expected.detach(), msg=method)
        assert torch.equal(res.target, t)


def test_grad_cam_is_captums_layer_map_upsampled(x):
    model = small_cnn().eval()
    ours = netviz.attribution(model, x, 1, "grad_cam", layer="2", interpolate_mode="nearest")
    layer_map = captum_attr.LayerGradCam(model, model[2]).attribute(
        x, target=1, relu_attributions=True
    )
    torch.testing.assert_close(ours.layer_attr, layer_map.detach())
    assert ours.layer_attr.shape == (3, 1, 8, 8) and ours.attr.shape == (3, 1, 8, 8)
    # by hand: ReLU(sum_k mean_ij(dscore/dA_k) * A_k) on the layer's output A
    a = model[1](model[0](x))
    act = model[2](a).detach().requires_grad_(True)
    score = model[5](model[4](model[3](act)))[:, 1].sum()
    (g,) = torch.autograd.grad(score, act)
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    torch.testing.assert_close(ours.layer_attr, cam.detach(), atol=1e-6, rtol=1e-5)


def test_grad_cam_upsamples_a_coarse_layer_to_the_input():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 2)
    ).eval()
    x = torch.randn(2, 1, 8, 8)
    res = netviz.attribution(model, x, 0, "grad_cam", layer=model[2])
    assert res.layer_attr.shape == (2, 1, 4, 4) and res.attr.shape == (2, 1, 8, 8)
    expected = torch.nn.functional.interpolate(res.layer_attr, size=(8, 8), mode="bilinear")
    torch.testing.assert_close(res.attr, expected)


def test_integrated_gradients_are_complete_within_the_reported_delta(x):
    model = small_cnn().eval()
    res = netviz.attribution(model, x, torch.tensor([0, 1, 2]), n_steps=64)
    with torch.no_grad():
        gain = (
            model(x)[torch.arange(3), res.target]
            - model(torch.zeros_like(x))[torch.arange(3), res.target]
        )
    sums = res.attr.sum(dim=(1, 2, 3))
    # Captum's delta is sum(attr) - (f(x) - f(baseline)): completeness up to it, exactly.
    torch.testing.assert_close(sums - gain, res.delta, atol=1e-5, rtol=0)
    assert float(res.delta.abs().max()) < 0.02 * float(gain.abs().max()) + 1e-4


def test_target_none_is_the_predicted_class_and_ints_broadcast(x):
    model = small_cnn().eval()
    with torch.no_grad():
        predicted = model(x).argmax(1)
    assert torch.equal(netviz.attribution(model, x, None, "saliency").target, predicted)
    assert netviz.attribution(model, x, 2, "saliency").target.tolist() == [2, 2, 2]


def test_grad_cam_points_at_the_region_that_holds_the_class_evidence():
    # Class 1 iff the top-left 3x3 corner is bright; the rest of the image is noise.
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 8, 8, generator=gen) * 0.5
    y = torch.randint(0, 2, (256,), generator=gen)
    x[y == 1, :, :3, :3] += 1.0
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (model(x).argmax(1) == y).float().mean() > 0.95
    positives = x[y == 1][:16]
    res = netviz.attribution(model, positives, 1, "grad_cam", layer="2")
    corner = res.attr[:, 0, :3, :3].sum(dim=(1, 2))
    assert (corner > 0.5 * res.attr.sum(dim=(1, 2, 3))).all()  # most of the map's mass
    peak = res.attr.flatten(1).argmax(1)
    rows, cols = peak // 8, peak % 8
    assert ((rows <= 3) & (cols <= 3)).all(), (rows, cols)
    occ = netviz.attribution(model, positives, 1, "occlusion", window=(1, 3, 3), strides=(1, 1, 1))
    assert (occ.attr[:, 0, :3, :3].mean(dim=(1, 2)) > occ.attr[:, 0, 4:, 4:].mean(dim=(1, 2))).all()


def test_the_model_is_left_as_it_was(x):
    model = small_cnn(inplace=True)
    model.train()
    model[0].eval()  # a mixed state must come back mixed
    model[2].weight.requires_grad_(False)
    model(x).sum().backward()
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    seen = []
    handle = model[3].register_forward_hook(lambda m, i, o: seen.append(1))
    before = [(m.training, getattr(m, "inplace", None)) for m in model.modules()]
    for method in METHODS:
        kwargs = {"layer": "2"} if method in ("grad_cam", "layer_integrated_gradients") else {}
        netviz.attribution(model, x, 1, method, **kwargs)
    assert [(m.training, getattr(m, "inplace", None)) for m in model.modules()] == before
    for n, p in model.named_parameters():
        if grads[n] is None:
            assert p.grad is None, n
        else:
            assert torch.equal(p.grad, grads[n]), n
    assert not model[2].weight.requires_grad and model[0].weight.requires_grad
    hooks = [
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    ]
    assert sum(hooks) == 1 and len(model[3]._forward_hooks) == 1
    handle.remove()
    assert seen  # the user's hook ran during the attribution (it was not removed)


def test_a_failing_captum_call_leaves_no_hook_behind(x):
    model = small_cnn()

    def broken(inp):
        raise RuntimeError("broken forward")

    model[4].register_forward_pre_hook(lambda m, a: broken(a))
    with pytest.raises(RuntimeError, match="broken forward"):
        netviz.attribution(model, x, 1, "grad_cam", layer="2")
    assert len(model[2]._forward_hooks) == 0 and len(model[4]._forward_pre_hooks) == 1


def test_in_place_relu_gives_the_same_maps_and_stays_in_place(x):
    plain, inplace = small_cnn(inplace=False).eval(), small_cnn(inplace=True).eval()
    for method in METHODS:
        kwargs = {"layer": "0"} if method in ("grad_cam", "layer_integrated_gradients") else {}
        a = netviz.attribution(plain, x, 1, method, **kwargs)
        b = netviz.attribution(inplace, x, 1, method, **kwargs)
        torch.testing.assert_close(a.attr, b.attr, msg=method)
    assert inplace[1].inplace and inplace[3].inplace


def test_inputs_are_not_modified_and_need_no_grad(x):
    model = small_cnn().eval()
    copy = x.clone()
    res = netviz.attribution(model, x, 0, "integrated_gradients")
    assert torch.equal(x, copy) and not x.requires_grad and x.grad is None
    assert not res.attr.requires_grad


def test_layer_integrated_gradients_on_token_embeddings():
    torch.manual_seed(0)

    class Bag(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, ids):
            return self.head(self.embed(ids).mean(dim=1))

    model = Bag().eval()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    res = netviz.attribution(
        model, ids, 1, "layer_integrated_gradients", layer="embed", baselines=torch.zeros_like(ids)
    )
    ref, delta = captum_attr.LayerIntegratedGradients(model, model.embed).attribute(
        ids, baselines=torch.zeros_like(ids), target=1, return_convergence_delta=True
    )
    torch.testing.assert_close(res.attr, ref.detach())
    torch.testing.assert_close(res.delta, delta.detach())
    assert res.attr.shape == (1, 5, 4)
    # the model is linear in the embeddings: IG is exact, (e - e0) . w / L per token
    w = model.head.weight[1] - 0
    e, e0 = model.embed(ids)[0], model.embed(torch.zeros_like(ids))[0]
    torch.testing.assert_close(
        res.attr[0].sum(-1), ((e - e0) @ w / 5).detach(), atol=1e-5, rtol=1e-4
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": "lime"}, ValueError, "unknown attribution method 'lime'"),
        ({"method": "saliency", "n_steps": 3}, TypeError, "takes no option"),
        ({"method": "grad_cam"}, ValueError, "needs `layer=`"),
        ({"method": "grad_cam", "layer": "nope"}, ValueError, "not a module of `model`"),
        ({"method": "grad_cam", "layer": nn.Conv2d(1, 1, 1)}, ValueError, "not part of `model`"),
        ({"method": "grad_cam", "layer": "5"}, ValueError, "spatial output"),
        ({"target": torch.tensor([0, 1])}, ValueError, "one class index per example"),
        ({"target": torch.tensor([0.5, 1.0, 0.0])}, TypeError, "class indices"),
    ],
)
def test_bad_arguments_are_explained(x, kwargs, error, message):
    model = small_cnn().eval()
    kwargs = {"target": 0, **kwargs}
    with pytest.raises(error, match=message):
        netviz.attribution(model, x, **kwargs)


@pytest.mark.slow
def test_captum_is_imported_lazily_and_its_absence_names_the_extra():
    code = (
        "import sys, torch, netviz\n"
        "netviz.attribution\n"
        "print('captum' in sys.modules)\n"
        "sys.modules['captum'] = None\n"  # what an environment without Captum looks like
        "sys.modules['captum.attr'] = None\n"
        "try:\n"
        "    netviz.attribution(torch.nn.Linear(2, 2), torch.ones(1, 2), 0)\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "False", out.stdout + out.stderr
    assert 'pip install "netviz[captum]"' in lines[1], out.stdout + out.stderr
