"""Attribution maps backed by Captum: :func:`attribution`.

Which input pixels (or tokens) drive a model's score for a class? One call,
``netviz.attribution(model, inputs, target, method=...)``, runs one of
Captum's attribution methods and returns an :class:`Attribution`: the map the
shape of the input (or of the layer, for layer methods), the convergence
delta where Captum gives one, and the targets used.

Methods (``method=``):

``"saliency"``
    ``|d score / d input|`` (:class:`captum.attr.Saliency`; ``abs=False``
    keeps the sign).
``"integrated_gradients"``
    Integrated gradients from ``baselines`` (default: zeros) with ``n_steps``
    steps (:class:`captum.attr.IntegratedGradients`); ``delta`` is Captum's
    convergence delta, ``sum(attr) - (f(x) - f(baseline))`` per example.
``"input_x_gradient"``
    input times gradient (:class:`captum.attr.InputXGradient`).
``"grad_cam"``
    Grad-CAM on the conv ``layer`` (a module or its qualified name;
    :class:`captum.attr.LayerGradCam`, ReLU applied unless ``relu=False``).
    ``layer_attr`` is the layer-sized map ``(N, 1, h, w)``; ``attr`` is that
    map upsampled to the input's spatial size (``(N, 1, H, W)``, (bi/tri)linear
    unless ``interpolate_mode`` says otherwise), ready to overlay.
``"occlusion"``
    score drop when a ``window`` (default: 3 along every non-batch dimension
    but channels, which are covered whole) is replaced by ``baselines``
    (default 0), moved by ``strides`` (default 1) (:class:`captum.attr.Occlusion`).
``"layer_integrated_gradients"``
    integrated gradients with respect to the output of ``layer`` (e.g. a
    token embedding), for inputs that cannot be interpolated (token ids);
    ``attr`` has the layer output's shape, ``delta`` as above
    (:class:`captum.attr.LayerIntegratedGradients`). Sum the last dimension
    for one score per token.

Captum is an optional dependency (``pip install "netviz[captum]"``); it is
imported on the first call, never by ``import netviz``.

The model is left as it was: its train/eval mode (attributions run in eval
mode unless ``eval_mode=False``), every parameter's ``.grad`` and
``requires_grad``, and its hooks (any hook left behind by a failing Captum
call is removed). In-place activations (``nn.ReLU(inplace=True)`` and every
other module with an ``inplace`` flag) are switched to out-of-place for the
call and switched back afterwards: with in-place activations, hooks on the
layer before them see the activation's output instead of the layer's
(meta-pytorch/captum#156, fixed in later Captum releases; the switch keeps
older Captum versions right too). ``torch.relu_``/``F.relu(..., inplace=True)``
inside ``forward`` cannot be switched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import torch
from torch import nn

from netviz._compat import module_hook_dicts
from netviz.errors import NetvizTypeError, NetvizValueError

__all__ = ["METHODS", "Attribution", "attribution"]

#: ``target=``: one class for every example, one class index per example, or None.
Target: TypeAlias = int | Sequence[int] | torch.Tensor | None

#: Method name -> the keyword arguments it accepts besides ``target``.
METHODS: dict[str, tuple[str, ...]] = {
    "saliency": ("abs", "additional_forward_args"),
    "integrated_gradients": (
        "baselines",
        "n_steps",
        "integration",
        "internal_batch_size",
        "additional_forward_args",
    ),
    "input_x_gradient": ("additional_forward_args",),
    "grad_cam": ("layer", "relu", "interpolate_mode", "additional_forward_args"),
    "occlusion": (
        "window",
        "strides",
        "baselines",
        "perturbations_per_eval",
        "additional_forward_args",
    ),
    "layer_integrated_gradients": (
        "layer",
        "baselines",
        "n_steps",
        "integration",
        "internal_batch_size",
        "additional_forward_args",
    ),
}


@dataclass(frozen=True)
class Attribution:
    """What :func:`attribution` returns.

    Attributes
    ----------
    method
        The method's name, e.g. ``"integrated_gradients"``.
    attr
        The attribution map, detached: the input's shape (``grad_cam``:
        ``(N, 1, *spatial)`` upsampled to the input; ``layer_integrated_gradients``:
        the layer output's shape).
    target
        The target class per example, ``(N,)`` (``None`` if the model's
        output needs none).
    delta
        Captum's convergence delta per example (integrated gradients), else ``None``.
    layer_attr
        ``grad_cam`` only: the map at the layer's resolution, ``(N, 1, h, w)``.
    """

    method: str
    attr: torch.Tensor
    target: torch.Tensor | None
    delta: torch.Tensor | None = None
    layer_attr: torch.Tensor | None = None


def _captum_attr() -> Any:
    try:
        import captum.attr
    except ImportError as err:
        raise ImportError(
            "netviz.attribution needs Captum, which is an optional dependency: "
            'pip install "netviz[captum]" (or pip install captum)'
        ) from err
    return captum.attr


def _resolve_layer(model: nn.Module, layer: object) -> nn.Module:
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise NetvizValueError(
                f"`layer` is a module that is not part of `model` ({type(layer).__name__}); "
                "pass one of model.modules() or its qualified name"
            )
        return layer
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            names = ", ".join(repr(n) for n in list(modules)[1:12])
            raise NetvizValueError(
                f"`layer` {layer!r} is not a module of `model` (some are: {names})"
            )
        return modules[layer]
    raise NetvizTypeError(
        f"`layer` must be a module of `model` or its qualified name, got {type(layer).__name__}"
    )


@contextlib.contextmanager
def _model_state_kept(model: nn.Module, eval_mode: bool) -> Iterator[None]:
    """Restore mode, ``.grad``, ``requires_grad``, hooks and in-place flags on exit."""
    modules = list(model.modules())
    training = [m.training for m in modules]
    params = list(model.parameters())
    grads = [p.grad for p in params]
    requires = [p.requires_grad for p in params]
    hooks = [{name: set(t) for name, t in module_hook_dicts(m).items()} for m in modules]
    inplace = [
        (m, bool(m.inplace)) for m in modules if isinstance(getattr(m, "inplace", None), bool)
    ]
    try:
        for m, _ in inplace:
            setattr(m, "inplace", False)  # noqa: B010 (Module's stub types attributes as Tensor | Module)
        if eval_mode:
            model.eval()
        yield
    finally:
        for m, flag in inplace:
            setattr(m, "inplace", flag)  # noqa: B010 (as above)
        for m, was in zip(modules, training):
            m.training = was
        for p, g, r in zip(params, grads, requires):
            p.requires_grad_(r)
            p.grad = g
        for m, before in zip(modules, hooks):
            for name, keys in before.items():
                table = module_hook_dicts(m).get(name)
                if table is None:
                    continue
                for key in [k for k in table if k not in keys]:
                    del table[key]


def _targets(
    model: nn.Module, inputs: torch.Tensor, target: Target, extra: object
) -> torch.Tensor | None:
    """``None`` -> the predicted class (argmax over dim 1) of a 2-D output."""
    if target is not None:
        if isinstance(target, int):
            return torch.full((len(inputs),), target, dtype=torch.long, device=inputs.device)
        t = torch.as_tensor(target, device=inputs.device)
        if t.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise NetvizTypeError(
                f"`target` must hold class indices (integers), got dtype {t.dtype}"
            )
        if t.ndim != 1 or len(t) != len(inputs):
            raise NetvizValueError(
                f"`target` must be an int or one class index per example "
                f"(shape ({len(inputs)},)), got shape {tuple(t.shape)}"
            )
        return t.long()
    args = () if extra is None else (extra if isinstance(extra, tuple) else (extra,))
    with torch.no_grad():
        out = model(inputs, *args)
    if out.ndim == 1:
        return None
    if out.ndim != 2:
        raise NetvizValueError(
            f"target=None picks the predicted class of a (N, classes) output; the model "
            f"returned shape {tuple(out.shape)}: pass `target` explicitly"
        )
    return out.argmax(dim=1)


def _default_window(inputs: torch.Tensor) -> tuple[int, ...]:
    if inputs.ndim < 2:
        raise NetvizValueError(
            f"occlusion needs a batch of inputs, shape (N, ...), got shape {tuple(inputs.shape)}"
        )
    if inputs.ndim >= 4:  # (N, C, H, W...): whole channels, 3 per spatial dimension
        return (inputs.shape[1], *[min(3, s) for s in inputs.shape[2:]])
    return tuple(min(3, s) for s in inputs.shape[1:])


def attribution(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    method: str = "integrated_gradients",
    *,
    eval_mode: bool = True,
    **kwargs: Any,
) -> Attribution:
    """Attribute ``model``'s score for ``target`` to ``inputs`` with a Captum method.

    Parameters
    ----------
    model
        A module returning scores ``(N, classes)`` (or ``(N,)``).
    inputs
        A batch ``(N, ...)``: images ``(N, C, H, W)``, or token ids for
        ``layer_integrated_gradients``. Not modified.
    target
        Class index (int) for every example, one per example, or ``None``
        for each example's predicted class.
    method
        One of :data:`METHODS` (see the module docstring).
    eval_mode
        Run the model in eval mode (dropout off, batch-norm running
        statistics); its own mode is restored afterwards either way.
    **kwargs
        The method's options: ``baselines``, ``n_steps`` (default 50),
        ``integration`` (Captum's ``method``, default ``"gausslegendre"``),
        ``internal_batch_size``, ``abs`` (saliency, default True), ``layer``
        and ``relu`` (default True) and ``interpolate_mode`` (default
        ``"bilinear"``) for Grad-CAM, ``window``, ``strides`` and
        ``perturbations_per_eval`` for occlusion, ``additional_forward_args``.

    Returns
    -------
    Attribution

    Raises
    ------
    ImportError
        If Captum is not installed (``pip install "netviz[captum]"``).
    netviz.NetvizValueError, netviz.NetvizTypeError
        (a ``ValueError``, a ``TypeError``) For an unknown method, an option the method does not take, a
        missing ``layer``, or targets of the wrong shape.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> res = attribution(model, torch.ones(2, 1, 2, 2), target=1, method="input_x_gradient")
    >>> res.attr.shape, res.target.tolist()
    (torch.Size([2, 1, 2, 2]), [1, 1])
    """
    if method not in METHODS:
        raise NetvizValueError(
            f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}"
        )
    unknown = sorted(set(kwargs) - set(METHODS[method]))
    if unknown:
        raise NetvizTypeError(
            f"method {method!r} takes no option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(METHODS[method])}"
        )
    if not isinstance(model, nn.Module):
        raise NetvizTypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor):
        raise NetvizTypeError(
            f"`inputs` must be a tensor (a batch, shape (N, ...)), got {type(inputs).__name__}"
        )
    if method in ("grad_cam", "layer_integrated_gradients") and "layer" not in kwargs:
        raise NetvizValueError(
            f"method {method!r} needs `layer=` (a module of `model` or its name)"
        )
    attr_mod = _captum_attr()
    extra = kwargs.pop("additional_forward_args", None)
    inputs = inputs.detach()
    if inputs.is_floating_point():
        inputs = inputs.clone().requires_grad_(True)  # Captum differentiates this copy
    with _model_state_kept(model, eval_mode):
        targets = _targets(model, inputs, target, extra)
        return _run(attr_mod, model, inputs, targets, method, extra, kwargs)


def _run(
    attr_mod: Any,
    model: nn.Module,
    inputs: torch.Tensor,
    target: torch.Tensor | None,
    method: str,
    extra: object,
    kw: dict[str, Any],
) -> Attribution:
    common = {"target": target, "additional_forward_args": extra}
    delta = layer_attr = None
    if method == "saliency":
        attr = attr_mod.Saliency(model).attribute(inputs, abs=kw.get("abs", True), **common)
    elif method == "input_x_gradient":
        attr = attr_mod.InputXGradient(model).attribute(inputs, **common)
    elif method in ("integrated_gradients", "layer_integrated_gradients"):
        if method == "integrated_gradients":
            algo = attr_mod.IntegratedGradients(model)
        else:
            algo = attr_mod.LayerIntegratedGradients(model, _resolve_layer(model, kw["layer"]))
        attr, delta = algo.attribute(
            inputs,
            baselines=kw.get("baselines"),
            n_steps=kw.get("n_steps", 50),
            method=kw.get("integration", "gausslegendre"),
            internal_batch_size=kw.get("internal_batch_size"),
            return_convergence_delta=True,
            **common,
        )
        delta = delta.detach()
    elif method == "grad_cam":
        layer = _resolve_layer(model, kw["layer"])
        layer_attr = attr_mod.LayerGradCam(model, layer).attribute(
            inputs, relu_attributions=kw.get("relu", True), **common
        )
        if layer_attr.ndim < 3:
            raise NetvizValueError(
                f"grad_cam needs a layer with spatial output (N, C, H, W...); {kw['layer']!r} "
                f"gave a map of shape {tuple(layer_attr.shape)}"
            )
        layer_attr = layer_attr.detach()
        default_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(inputs.ndim - 2, "nearest")
        attr = attr_mod.LayerAttribution.interpolate(
            layer_attr,
            tuple(inputs.shape[2:]),
            interpolate_mode=kw.get("interpolate_mode", default_mode),
        )
    else:  # occlusion
        attr = attr_mod.Occlusion(model).attribute(
            inputs,
            sliding_window_shapes=tuple(kw.get("window") or _default_window(inputs)),
            strides=kw.get("strides", 1),
            baselines=kw.get("baselines", 0),
            perturbations_per_eval=kw.get("perturbations_per_eval", 1),
            **common,
        )
    return Attribution(method, attr.detach(), target, delta, layer_attr)
