"""``timestep_grad``: the norm of dL/dh_t at every time step of a recurrent layer.

Record convention
-----------------
One record per time step: ``module`` is the recurrent module, ``call`` holds
the **time step** ``t`` (0-based, in input order) instead of a call index,
``stat`` is ``"l2"`` and ``value`` is :math:`\\lVert \\partial L / \\partial h_t \\rVert_2`,
the L2 norm over the batch and the hidden features of the *total* gradient of
the loss with respect to the hidden state of the last layer at step ``t``
(the gradient that reaches ``h_t`` from the output *and* from every later
step through the recurrence):

.. math::

    \\frac{\\partial L}{\\partial h_t} = \\frac{\\partial L}{\\partial y_t}
    + \\left(\\frac{\\partial h_{t+1}}{\\partial h_t}\\right)^{\\!\\top}
      \\frac{\\partial L}{\\partial h_{t+1}}

Which modules
-------------
- :class:`~torch.nn.RNNCell`, :class:`~torch.nn.LSTMCell`,
  :class:`~torch.nn.GRUCell` called once per time step (an unrolled loop):
  the ``k``-th call of the cell in one forward pass is time step ``t = k``; a gradient
  hook on each returned ``h_t`` sees the total gradient directly.
- :class:`~torch.nn.RNN`, :class:`~torch.nn.LSTM`, :class:`~torch.nn.GRU`: the
  fused kernel never exposes the intermediate hidden states to autograd (the
  gradient arriving at ``output[t]`` holds only the *direct* part
  :math:`\\partial L/\\partial y_t`). The probe therefore re-runs the last layer
  step by step from detached copies of its inputs and weights during the
  forward, and when the gradients of ``output``, ``h_n`` (and ``c_n``) arrive
  it back-propagates them through that copy in one ``torch.autograd.grad``
  call. This costs about one extra forward and backward of the last layer on
  recorded steps and never synchronises with the host. Only the module's first
  call in a forward pass is recorded. ``batch_first`` and bidirectional modules are
  handled (the norm then covers both directions' states at ``t``). With
  inter-layer ``dropout`` in training mode the last layer's input is replayed
  without dropout, so the values are approximate. Packed sequences raise
  :class:`ValueError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from netviz.capture.probe import Probe, ProbeContext
from netviz.capture.stats import buffer_dtype
from netviz.errors import NetvizValueError

__all__ = ["TimestepGrad", "replay_layer"]

_CELLS = (nn.RNNCell, nn.LSTMCell, nn.GRUCell)
_FUSED = (nn.RNN, nn.LSTM, nn.GRU)


def _cell_step(
    module: nn.RNNBase, w: dict[str, torch.Tensor], x: torch.Tensor, h: torch.Tensor, c: Any
) -> tuple[torch.Tensor, Any]:
    """One step of ``module``'s cell with weights ``w`` (PyTorch's formulas)."""
    gi = x @ w["w_ih"].T
    gh = h @ w["w_hh"].T
    if "b_ih" in w:
        gi = gi + w["b_ih"]
        gh = gh + w["b_hh"]
    if isinstance(module, nn.LSTM):
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if "w_hr" in w:
            h = h @ w["w_hr"].T
        return h, c
    if isinstance(module, nn.GRU):
        ir, iz, in_ = gi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return (1 - z) * n + z * h, None
    act = torch.tanh if module.nonlinearity == "tanh" else torch.relu
    return act(gi + gh), None


def replay_layer(
    module: nn.RNNBase, layer: int, layer_input: torch.Tensor, hx: Any
) -> tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
    """Replay one layer of ``module`` step by step with detached weights and inputs.

    Parameters
    ----------
    module
        An :class:`~torch.nn.RNN`, :class:`~torch.nn.LSTM` or :class:`~torch.nn.GRU`.
    layer
        Which layer (0-based).
    layer_input
        The layer's input sequence, time-major ``(T, B, features)``, detached.
    hx
        The module's initial state argument (``None``, ``h_0`` or ``(h_0, c_0)``),
        batched.

    Returns
    -------
    (states, finals)
        ``states[d][t]``: hidden state of direction ``d`` at input position
        ``t`` (each a tensor that requires grad when grad mode is on); ``finals``:
        the replayed ``h_n`` (and ``c_n``) of the layer, per direction, for the
        gradients that arrive at the module's final-state outputs.
    """
    dirs = 2 if module.bidirectional else 1
    T, B = layer_input.shape[0], layer_input.shape[1]
    out_size = module.proj_size if getattr(module, "proj_size", 0) else module.hidden_size
    states: list[list[torch.Tensor]] = []
    finals: list[torch.Tensor] = []
    for d in range(dirs):
        sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
        names = {
            "w_ih": f"weight_ih{sfx}",
            "w_hh": f"weight_hh{sfx}",
            "b_ih": f"bias_ih{sfx}",
            "b_hh": f"bias_hh{sfx}",
            "w_hr": f"weight_hr{sfx}",
        }
        w = {k: getattr(module, n).detach() for k, n in names.items() if hasattr(module, n)}
        idx = layer * dirs + d
        h0 = c0 = None
        if isinstance(hx, tuple):
            h0, c0 = hx[0][idx], hx[1][idx]
        elif hx is not None:
            h0 = hx[idx]
        like = layer_input
        h = (h0.detach() if h0 is not None else like.new_zeros(B, out_size)).clone()
        if torch.is_grad_enabled():
            h.requires_grad_(True)
        c = None
        if isinstance(module, nn.LSTM):
            c = c0.detach() if c0 is not None else like.new_zeros(B, module.hidden_size)
        order = range(T) if d == 0 else range(T - 1, -1, -1)
        seq: list[torch.Tensor] = [None] * T  # type: ignore[list-item]
        for t in order:
            h, c = _cell_step(module, w, layer_input[t], h, c)
            seq[t] = h
        states.append(seq)
        finals.append(h)
        if c is not None:
            finals.append(c)
    return states, finals


class TimestepGrad(Probe):
    """Per-time-step norm of dL/dh_t of recurrent modules (see the module docstring).

    Records ``stat="l2"`` with ``call`` = time step ``t``. Only recurrent
    modules (:class:`~torch.nn.RNN`, :class:`~torch.nn.LSTM`,
    :class:`~torch.nn.GRU` and their ``*Cell`` versions) among the selected
    ones give rows; select them with ``modules=`` to skip everything else.

    Examples
    --------
    >>> import torch, netviz
    >>> rnn = torch.nn.RNN(3, 5)
    >>> with netviz.watch(rnn, probes="timestep_grad") as mon:
    ...     out, h_n = rnn(torch.randn(7, 2, 3))
    ...     out[-1].sum().backward()
    >>> df = mon.to_pandas()
    >>> df.call.tolist()  # one row per time step
    [0, 1, 2, 3, 4, 5, 6]
    """

    name = "timestep_grad"
    raw_fields = ("sum_sq",)
    stats = ("l2",)
    needs_forward = True

    def finalize(self, raw: np.ndarray) -> np.ndarray:
        return np.sqrt(raw)

    def on_forward(
        self, ctx: ProbeContext, name: str, module: nn.Module, args: tuple, output: Any
    ) -> None:
        if isinstance(module, _CELLS):
            h = output[0] if isinstance(output, tuple) else output
            if not h.requires_grad:
                return
            t = ctx.call_index(name)
            dt = buffer_dtype(h.device)

            def cell_hook(grad: torch.Tensor) -> None:
                sq = grad.detach().to(dt).pow(2).sum()
                ctx.emit(name, sq.reshape(1), call=t)

            ctx.register_tensor_hook(h, cell_hook)
        elif isinstance(module, _FUSED):
            if ctx.call_index(name) > 0:
                return  # only the first call of a forward pass is recorded
            self._hook_fused(ctx, name, module, args, output)

    def _hook_fused(
        self, ctx: ProbeContext, name: str, module: nn.RNNBase, args: tuple, output: Any
    ) -> None:
        x = args[0] if args else None
        if isinstance(x, PackedSequence) or isinstance(output[0], PackedSequence):
            raise NetvizValueError(
                f"probe 'timestep_grad' on module {name!r}: packed sequences "
                "(PackedSequence) are not supported; pad the batch "
                "(torch.nn.utils.rnn.pad_packed_sequence) or leave this module out "
                "with watch(modules=...)"
            )
        out, final = output
        tensors = [out, *(final if isinstance(final, tuple) else (final,))]
        if not any(t.requires_grad for t in tensors):
            return
        if not isinstance(x, torch.Tensor):  # an RNN's forward always has its input first
            return
        hx = args[1] if len(args) > 1 else None
        unbatched = out.dim() == 2
        # Input of the last layer: the module input for one layer, otherwise
        # the output of layer L-2, which the fused kernel does not return; it
        # is replayed without grad.
        with torch.no_grad():
            inp = x.unsqueeze(1) if unbatched else x
            if module.batch_first and not unbatched:
                inp = inp.transpose(0, 1)
            hx_b = hx
            if unbatched and hx is not None:
                hx_b = (
                    tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
                )
            layer_in = inp.detach()
            if module.num_layers > 1:
                layer_in = _lower_layers(module, layer_in, hx_b)
        with torch.enable_grad():
            states, finals = replay_layer(module, module.num_layers - 1, layer_in, hx_b)
            replay_out = torch.cat([torch.stack(s) for s in states], dim=-1)
        T = replay_out.shape[0]
        dirs = len(states)
        dt = buffer_dtype(out.device)
        batch_first = module.batch_first and not unbatched
        n_final = len(tensors) - 1

        def fused_hook(grads: Any) -> None:
            g_out = grads[0]
            if g_out is not None:
                g_out = g_out.unsqueeze(1) if unbatched else g_out
                g_out = g_out.transpose(0, 1) if batch_first else g_out
            outs, gouts = [], []
            if g_out is not None:
                outs.append(replay_out)
                gouts.append(g_out.detach().to(replay_out.dtype))
            # final states: (layers*dirs, B, H); the last layer's entries are the last `dirs`
            for k in range(n_final):
                g = grads[1 + k]
                if g is None:
                    continue
                g = g.unsqueeze(1) if unbatched else g
                for d in range(dirs):
                    outs.append(finals[d * n_final + k])
                    gouts.append(g[g.shape[0] - dirs + d].detach().to(replay_out.dtype))
            if not outs:
                return
            flat = [s for seq in states for s in seq]
            with torch.enable_grad():
                got = torch.autograd.grad(outs, flat, gouts, allow_unused=True)
            dh = [d if d is not None else torch.zeros_like(f) for d, f in zip(got, flat)]
            # (dirs * T, B, H) -> squared norm per direction and step, in one reduction
            sq = torch.stack(dh).to(dt).pow(2).sum(dim=(-2, -1))
            per_t = sq.reshape(dirs, T).sum(0)
            for t in range(T):
                ctx.emit(name, per_t[t : t + 1], call=t)

        live = [t for t in tensors if t.requires_grad]
        order = [i for i, t in enumerate(tensors) if t.requires_grad]

        def dispatch(grads: Any) -> None:
            full: list[Any] = [None] * len(tensors)
            for i, g in zip(order, grads):
                full[i] = g
            fused_hook(full)

        ctx.add_step_handle(torch.autograd.graph.register_multi_grad_hook(live, dispatch))


def _lower_layers(module: nn.RNNBase, inp: torch.Tensor, hx: Any) -> torch.Tensor:
    """Output sequence of layers ``0 .. L-2`` of ``module`` (time-major, call under no_grad).

    Replayed with :func:`replay_layer` rather than a copy of the module, so
    that nothing is allocated or initialised (no random numbers are drawn).
    Inter-layer dropout is not applied.
    """
    x = inp
    for layer in range(module.num_layers - 1):
        states, _ = replay_layer(module, layer, x, hx)
        x = torch.cat([torch.stack(seq) for seq in states], dim=-1)
    return x
