r"""Attention probabilities of every attention a model computes in one pass.

Three sources are covered while a capture is active:

- :class:`torch.nn.MultiheadAttention` (also inside ``nn.TransformerEncoder``,
  ``nn.TransformerDecoder`` and ``nn.Transformer``): a forward hook re-runs
  PyTorch's own ``F.multi_head_attention_forward`` with ``need_weights=True,
  average_attn_weights=False`` and no dropout on the same inputs and masks.
  The caller's own call is untouched, so it gets exactly what it asked for
  (``None`` weights with ``need_weights=False``, averaged weights with
  ``average_attn_weights=True``).
- :func:`torch.nn.functional.scaled_dot_product_attention` (GPT-style blocks):
  patched for the duration of the capture, in ``torch.nn.functional`` and in
  the Python modules that define the model's module classes (catching
  ``from torch.nn.functional import scaled_dot_product_attention``). The
  patch calls the original with the caller's arguments, then recomputes
  :math:`\operatorname{softmax}(QK^\top \cdot \text{scale} + M)` from ``query``,
  ``key``, ``attn_mask``, ``is_causal``, ``scale`` and ``enable_gqa``
  (:func:`~netviz.capture._sdpa.sdpa_weights`). The result is attributed to
  the innermost module whose forward is running (a module stack kept by
  forward pre-hooks and hooks during the capture); SDPA calls made outside
  the model's forward (another model, plain code) are ignored, and those made
  inside a ``MultiheadAttention`` are not counted twice.
- Custom attention code that computes its own softmax calls
  :func:`record_attention`; it is a no-op when no capture is active.

Probabilities are returned as ``(batch, heads, query_len, key_len)`` (unbatched
``MultiheadAttention`` inputs get ``batch = 1``; SDPA inputs ``(N, L, E)`` give
``heads = 1``, and ``(N, h1, h2, L, E)`` flatten ``h1 * h2`` heads), detached, before dropout, on the device they were
computed on. Rows whose every key is masked are NaN. Keys of the result are
qualified module names (root ``""``), with ``#i`` appended when one module
attends several times in the pass (``"layers.0.self_attn#1"``), as in
:func:`~netviz.capture.activations.call_keys`.

Nothing stays hooked or patched afterwards, also after an exception. A call
whose attention cannot be recomputed (e.g. a ``MultiheadAttention`` subclass
with another ``forward`` signature) is left out with a ``RuntimeWarning``; the
model's own forward is never disturbed. The
transformer fast path (a fused kernel that skips the submodules) is turned off
during the capture when the model holds a ``TransformerEncoder(Layer)``, and
PyTorch's setting is restored afterwards; with it off, the model's outputs are
those of the unfused path, equal to the fused ones up to rounding.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netviz._compat import mha_packed_in_proj
from netviz._leaf import call_keys
from netviz.capture._sdpa import SdpaPatch, bind_sdpa, sdpa_weights
from netviz.capture.activations import fastpath_bypassed
from netviz.capture.selection import ModuleSelector, select_modules, unwrap
from netviz.errors import (
    NetvizRuntimeError,
    NetvizTypeError,
    NetvizValueError,
    NothingRecordedWarning,
)

__all__ = ["AttentionCapture", "capture_attention", "mha_weights", "record_attention"]

#: Captures active in the current context (thread / asyncio task).
_ACTIVE: contextvars.ContextVar[tuple[AttentionCapture, ...]] = contextvars.ContextVar(
    "netviz_attention_captures", default=()
)

_MHA_SIGNATURE = inspect.signature(nn.MultiheadAttention.forward)


def as_4d(probs: torch.Tensor) -> torch.Tensor:
    """``(L, S)``, ``(H, L, S)`` or ``(B, H, L, S)`` -> ``(B, H, L, S)``."""
    if not isinstance(probs, torch.Tensor):
        raise NetvizTypeError(
            f"attention `probs` must be a torch.Tensor, got {type(probs).__name__}"
        )
    if probs.dim() == 2:
        return probs[None, None]
    if probs.dim() == 3:
        return probs[None]
    if probs.dim() == 4:
        return probs
    raise NetvizValueError(
        "attention `probs` must have shape (L, S), (heads, L, S) or (batch, heads, L, S); "
        f"got {tuple(probs.shape)}"
    )


def mha_weights(
    module: nn.MultiheadAttention,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """Per-head attention probabilities of ``module`` for one call, without dropout.

    Runs PyTorch's ``F.multi_head_attention_forward`` on the module's
    parameters with ``need_weights=True, average_attn_weights=False`` and
    ``dropout_p=0`` (so no random numbers are drawn), without gradients.

    Returns
    -------
    torch.Tensor
        ``(batch, heads, L, S)``; ``batch = 1`` for unbatched inputs.
    """
    batched = query.dim() == 3
    if module.batch_first and batched:
        query, key, value = (x.transpose(1, 0) for x in (query, key, value))
    separate = not mha_packed_in_proj(module)
    with torch.no_grad():
        _, weights = F.multi_head_attention_forward(
            query,
            key,
            value,
            module.embed_dim,
            module.num_heads,
            module.in_proj_weight,
            module.in_proj_bias,
            module.bias_k,
            module.bias_v,
            module.add_zero_attn,
            0.0,
            module.out_proj.weight,
            module.out_proj.bias,
            training=False,
            key_padding_mask=key_padding_mask,
            need_weights=True,
            attn_mask=attn_mask,
            use_separate_proj_weight=separate,
            q_proj_weight=module.q_proj_weight if separate else None,
            k_proj_weight=module.k_proj_weight if separate else None,
            v_proj_weight=module.v_proj_weight if separate else None,
            average_attn_weights=False,
            is_causal=is_causal,
        )
    assert weights is not None  # need_weights=True
    return as_4d(weights)


def _skip_warning(name: str, exc: Exception) -> None:
    warnings.warn(
        f"netviz could not recompute the attention of module {name!r} "
        f"({type(exc).__name__}: {exc}); it is left out of the capture",
        RuntimeWarning,
        stacklevel=3,
    )


class AttentionCapture:
    """Record the attention of ``model`` while inside ``with``.

    Parameters
    ----------
    model
        The model (DDP / ``torch.compile`` wrappers are looked through).
    modules
        ``None`` keeps every attention; otherwise a selector as in
        :func:`netviz.watch`, and an attention is kept when the module it is
        attributed to is a selected module or lies inside one.
    on_record
        ``(key_name, probs) -> None`` called for each attention instead of
        storing it (used by the ``attention`` probe).
    enabled
        ``() -> bool``; when it returns false, attentions are not recomputed
        (the probe passes "is this step recorded").
    keep
        ``(name) -> bool``, used instead of ``modules`` to choose which
        attentions (by the name of their module) are kept.

    Attributes
    ----------
    weights
        After the ``with`` block: ``{key: (B, H, L, S) tensor}`` in call order
        (key scheme in the module docstring).

    Examples
    --------
    >>> layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
    >>> x = torch.randn(1, 5, 8)
    >>> with torch.no_grad(), AttentionCapture(layer) as cap:
    ...     y = layer(x)
    >>> {k: tuple(v.shape) for k, v in cap.weights.items()}
    {'self_attn': (1, 2, 5, 5)}
    """

    def __init__(
        self,
        model: nn.Module,
        modules: ModuleSelector = None,
        on_record: Callable[[str, torch.Tensor], None] | None = None,
        enabled: Callable[[], bool] | None = None,
        keep: Callable[[str], bool] | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise NetvizTypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        self._model = unwrap(model)
        named = list(self._model.named_modules())
        self._names = {m: n for n, m in reversed(named)}  # first name of shared modules
        if modules is None:
            self._prefixes: tuple[str, ...] | None = None
        else:
            self._prefixes = tuple(n for n, _ in select_modules(self._model, modules))
        if keep is not None and modules is not None:
            raise NetvizValueError("pass either `modules` or `keep`, not both")
        self._keep = keep
        self._on_record = on_record
        self._enabled = enabled
        self._pairs: list[tuple[str, torch.Tensor]] = []
        self._stack: list[nn.Module] = []
        self._handles: list[Any] = []
        self._exit: contextlib.ExitStack | None = None
        self._token: contextvars.Token | None = None
        self.weights: dict[str, torch.Tensor] = {}

    # ----------------------------------------------------------- attach
    def attach(self, patches: bool = True) -> AttentionCapture:
        """Install hooks, the SDPA patch and the fast-path bypass (see :meth:`detach`).

        With ``patches=False`` only the model's own hooks are installed; the
        process-wide parts (the ``scaled_dot_product_attention`` patch and the
        fast-path switch) are then applied around each forward with
        :meth:`patched` (the ``attention`` probe does this on recorded steps).
        """
        if self._exit is not None:
            raise NetvizRuntimeError("this AttentionCapture is already attached")
        stack = contextlib.ExitStack()
        self._exit = stack
        self._pairs = []
        try:
            stack.callback(self._remove_handles)
            for module in self._names:
                self._handles.append(module.register_forward_pre_hook(self._push))
                self._handles.append(module.register_forward_hook(self._pop, always_call=True))
                if isinstance(module, nn.MultiheadAttention):
                    self._handles.append(
                        module.register_forward_hook(self._mha_hook, with_kwargs=True)
                    )
            if patches:
                stack.enter_context(self.patched())
        except BaseException:
            self.detach()
            raise
        return self

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        """The process-wide parts of a capture, undone on every exit path.

        Inside: PyTorch's transformer fast path off (when the model needs it),
        ``scaled_dot_product_attention`` patched, and this capture active for
        :func:`record_attention`.
        """
        with contextlib.ExitStack() as stack:
            stack.enter_context(fastpath_bypassed(self._model))
            extra = {type(m).__module__ for m in self._names}
            patch = SdpaPatch(self._on_sdpa, extra_modules=extra)
            stack.callback(patch.remove)
            self._token = _ACTIVE.set((*_ACTIVE.get(), self))
            stack.callback(self._deactivate)
            yield

    def detach(self) -> None:
        """Remove everything :meth:`attach` installed and build :attr:`weights`. Idempotent."""
        stack, self._exit = self._exit, None
        if stack is not None:
            stack.close()
        self._stack.clear()
        self.weights = call_keys(self._pairs)

    def _remove_handles(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def _deactivate(self) -> None:
        token, self._token = self._token, None
        try:
            if token is not None:
                _ACTIVE.reset(token)
                return
        except ValueError:  # detached from another context than it was attached in
            pass
        _ACTIVE.set(tuple(c for c in _ACTIVE.get() if c is not self))

    def __enter__(self) -> AttentionCapture:
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    # ------------------------------------------------------------ hooks
    def _push(self, module: nn.Module, args: tuple) -> None:
        self._stack.append(module)

    def _pop(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()
            return
        for i in range(len(self._stack) - 1, -1, -1):  # an exception skipped some pops
            if self._stack[i] is module:
                del self._stack[i:]
                return

    def _wanted(self, name: str) -> bool:
        if self._enabled is not None and not self._enabled():
            return False
        if self._keep is not None:
            return bool(self._keep(name))
        if self._prefixes is None:
            return True
        return any(p == "" or name == p or name.startswith(p + ".") for p in self._prefixes)

    def _add(self, name: str, probs: torch.Tensor) -> None:
        probs = as_4d(probs.detach())
        if self._on_record is not None:
            self._on_record(name, probs)
        else:
            self._pairs.append((name, probs))

    def _mha_hook(
        self, module: nn.MultiheadAttention, args: tuple, kwargs: dict, output: Any
    ) -> None:
        name = self._names.get(module)
        if name is None or not self._wanted(name):  # e.g. a DataParallel replica
            return
        try:
            bound = _MHA_SIGNATURE.bind(module, *args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            probs = mha_weights(
                module,
                a["query"],
                a["key"],
                a["value"],
                key_padding_mask=a["key_padding_mask"],
                attn_mask=a["attn_mask"],
                is_causal=a["is_causal"],
            )
        except Exception as exc:  # never break the model's own forward
            _skip_warning(name, exc)
            return
        self._add(name, probs)

    def _on_sdpa(self, args: tuple, kwargs: dict) -> None:
        if not self._stack:
            return  # not called from this model's forward (another model, plain code)
        if isinstance(self._stack[-1], nn.MultiheadAttention):
            return  # the MultiheadAttention hook records this one
        name = self._names.get(self._stack[-1], "")
        if not self._wanted(name):
            return
        try:
            a = bind_sdpa(args, kwargs)
            with torch.no_grad():
                probs = sdpa_weights(
                    a["query"],
                    a["key"],
                    attn_mask=a["attn_mask"],
                    is_causal=bool(a["is_causal"]),
                    scale=a["scale"],
                    enable_gqa=bool(a["enable_gqa"]),
                )
        except Exception as exc:  # never break the model's own forward
            _skip_warning(name, exc)
            return
        if probs.dim() == 3:  # (N, L, S): a batch of single-head attentions
            probs = probs[:, None]
        elif probs.dim() > 4:  # (N, *heads, L, S): heads flattened
            probs = probs.reshape(probs.shape[0], -1, *probs.shape[-2:])
        self._add(name, probs)

    def record(self, module_or_name: nn.Module | str | None, probs: torch.Tensor) -> None:
        """Record ``probs`` for a module of this model (see :func:`record_attention`)."""
        if not isinstance(module_or_name, (nn.Module, str, type(None))):
            raise NetvizTypeError(
                "`module_or_name` must be an nn.Module, a str or None, "
                f"got {type(module_or_name).__name__}"
            )
        probs = as_4d(probs)
        if isinstance(module_or_name, nn.Module):
            name = self._names.get(module_or_name)
            if name is None:
                return  # a module of another model: not this capture's business
        elif not self._stack:
            return  # not called from this model's forward
        elif module_or_name is None:
            name = self._names.get(self._stack[-1], "")
        else:
            name = module_or_name
        if self._wanted(name):
            self._add(name, probs.detach().clone())


def record_attention(module_or_name: nn.Module | str | None, probs: torch.Tensor) -> None:
    """Hand attention probabilities computed by custom code to the active capture(s).

    Call it from a module's ``forward`` right after its own softmax; it is a
    no-op (and costs one context-variable read) when no
    :func:`capture_attention` / :class:`AttentionCapture` / ``attention``
    probe is active in the current thread or task.

    Parameters
    ----------
    module_or_name
        The module the attention belongs to (usually ``self``; its qualified
        name becomes the key), a name to use as is, or ``None`` for the
        innermost module whose forward is running. A capture takes a name or
        ``None`` only while its model's forward is running, and a module only
        if it belongs to its model.
    probs
        ``(L, S)``, ``(heads, L, S)`` or ``(batch, heads, L, S)``; stored
        detached and cloned (later in-place changes do not affect it).

    Examples
    --------
    >>> class MyAttention(nn.Module):
    ...     def forward(self, x):
    ...         probs = torch.softmax(x @ x.transpose(-2, -1), dim=-1)
    ...         record_attention(self, probs)
    ...         return probs @ x
    >>> net = nn.Sequential(MyAttention())
    >>> x = torch.randn(2, 3, 4, 8)
    >>> tuple(capture_attention(net, x)["0"].shape)
    (2, 3, 4, 4)
    """
    captures = _ACTIVE.get()
    for capture in captures:
        capture.record(module_or_name, probs)


def capture_attention(
    model: nn.Module, *args: Any, modules: ModuleSelector = None, **kwargs: Any
) -> dict[str, torch.Tensor]:
    """Run ``model(*args, **kwargs)`` once and return every attention it computed.

    Parameters
    ----------
    model
        Any :class:`torch.nn.Module`: stock ``nn.MultiheadAttention`` /
        ``nn.Transformer*`` modules, modules calling
        ``F.scaled_dot_product_attention``, or custom code calling
        :func:`record_attention`.
    *args, **kwargs
        Passed to ``model`` unchanged; the pass runs in the caller's grad mode
        and train/eval mode (eval mode under ``torch.no_grad()`` works).
    modules
        ``None`` (all) or a selector as in :func:`netviz.watch`; an attention
        is kept when its module is selected or lies inside a selected module
        (``modules="encoder.layers.0"`` keeps ``encoder.layers.0.self_attn``).

    Returns
    -------
    dict[str, torch.Tensor]
        ``{key: probs}`` in call order, ``probs`` of shape ``(batch, heads,
        query_len, key_len)`` (``batch = 1`` for unbatched input), rows summing
        to 1 (NaN rows where every key is masked). Keys: the qualified name of
        the module that computed the attention, ``name#i`` for the ``i``-th
        attention of a module that attends several times.

    Examples
    --------
    >>> enc = nn.TransformerEncoder(
    ...     nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), num_layers=2
    ... ).eval()
    >>> with torch.no_grad():
    ...     att = capture_attention(enc, torch.randn(3, 7, 16))
    >>> {k: tuple(v.shape) for k, v in att.items()}
    {'layers.0.self_attn': (3, 4, 7, 7), 'layers.1.self_attn': (3, 4, 7, 7)}
    """
    with AttentionCapture(model, modules) as capture:
        model(*args, **kwargs)
    if not capture.weights:
        suspects = [
            n or type(m).__name__
            for n, m in unwrap(model).named_modules()
            if "attention" in type(m).__name__.lower() or n.rsplit(".", 1)[-1] in _ATTN_NAMES
        ]
        if suspects:
            warnings.warn(
                f"capture_attention found no attention it can see in {type(model).__name__}, "
                f"although it has attention-like modules ({', '.join(suspects[:3])}"
                f"{', ...' if len(suspects) > 3 else ''}): netviz recomputes "
                "nn.MultiheadAttention and scaled_dot_product_attention; for a hand-written "
                'softmax (e.g. a Hugging Face model with attn_implementation="eager") call '
                "netviz.record_attention(probs) in its forward, or use the model's own "
                "output_attentions=True",
                NothingRecordedWarning,
                stacklevel=2,
            )
    return capture.weights


#: Last name parts that suggest an attention module.
_ATTN_NAMES = frozenset({"attn", "self_attn", "attention", "self_attention", "cross_attn"})
