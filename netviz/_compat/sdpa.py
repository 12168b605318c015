"""``scaled_dot_product_attention``'s C function and the patch that sees its calls.

Part of :mod:`netviz._compat` (imports only torch).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["SDPA_BUILTIN", "SdpaPatch"]

#: The C function behind :func:`torch.nn.functional.scaled_dot_product_attention`
#: (``torch._C._nn.scaled_dot_product_attention``); the public function where gone.
SDPA_BUILTIN: Callable[..., torch.Tensor] = getattr(
    getattr(torch._C, "_nn", None),
    "scaled_dot_product_attention",
    torch.nn.functional.scaled_dot_product_attention,
)


class SdpaPatch:
    """Replace ``scaled_dot_product_attention`` in some modules; :meth:`remove` undoes it.

    The replacement calls the function it replaced with the caller's
    arguments unchanged (so outputs are bit-identical), then hands
    ``(args, kwargs)`` to ``on_call``. Patched: :mod:`torch.nn.functional` and
    every module in ``extra_modules`` whose global names the original
    function (``from torch.nn.functional import scaled_dot_product_attention``).
    :meth:`remove` restores a name only if it still holds this patch's
    function, so patches removed out of order never undo each other; a patch
    removed while another one wraps it turns into a pass-through that the
    outer one skips when it is removed.
    """

    def __init__(self, on_call: Callable[[tuple, dict], None], extra_modules: Iterable[str] = ()):
        F = torch.nn.functional
        self._active = True
        self._patched: list[tuple[Any, str, Any, Any]] = []
        # Names may hold PyTorch's builtin or another capture's patch of it.
        originals = {id(F.scaled_dot_product_attention), id(SDPA_BUILTIN)}
        targets = {"torch.nn.functional": F}
        for name in extra_modules:
            mod = sys.modules.get(name)
            if mod is not None:
                targets.setdefault(name, mod)
        try:
            for mod in targets.values():
                for attr, value in list(vars(mod).items()):
                    if id(value) in originals and callable(value):
                        wrapper = self._wrap(value, on_call)
                        setattr(mod, attr, wrapper)
                        self._patched.append((mod, attr, value, wrapper))
        except BaseException:
            self.remove()
            raise
        #: The replacement installed in :mod:`torch.nn.functional`.
        self.function = F.scaled_dot_product_attention

    def _wrap(self, original: Callable, on_call: Callable[[tuple, dict], None]) -> Callable:
        def scaled_dot_product_attention(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            if self._active:
                on_call(args, kwargs)
            return out

        scaled_dot_product_attention.__wrapped__ = original  # type: ignore[attr-defined]
        scaled_dot_product_attention._netviz_patch = self  # type: ignore[attr-defined]
        scaled_dot_product_attention.__doc__ = original.__doc__
        return scaled_dot_product_attention

    def remove(self) -> None:
        """Restore every patched name (idempotent)."""
        self._active = False
        while self._patched:
            mod, attr, original, wrapper = self._patched.pop()
            # Skip patches already removed out of order: they only pass calls through.
            while getattr(original, "_netviz_patch", None) is not None and not (
                original._netviz_patch._active
            ):
                original = original.__wrapped__
            if getattr(mod, attr, None) is wrapper:
                setattr(mod, attr, original)
