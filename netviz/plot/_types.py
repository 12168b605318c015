"""Type aliases of the public plot signatures (for type checkers and the docs only).

Nothing here is imported at run time: the aliases are strings under
``TYPE_CHECKING`` (``from __future__ import annotations`` keeps signatures lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping
    from typing import TypeAlias

    import numpy as np
    import pandas as pd
    import torch

    from netviz.capture import Monitor
    from netviz.diagnosis import Report

    #: A record table, or what holds one: ``Monitor.to_pandas()``, ``Report.records``.
    Records: TypeAlias = "pd.DataFrame | Report | Monitor"
    #: A histogram table (``Monitor.histograms()``), a Monitor, or the path of a saved run.
    HistogramData: TypeAlias = "pd.DataFrame | Monitor | str | os.PathLike[str]"
    #: A tensor or array, the ``{name: tensor}`` dict of a capture function, or a
    #: ``save_tensors`` file.
    Tensors: TypeAlias = "torch.Tensor | np.ndarray | Mapping[str, torch.Tensor | np.ndarray] | str | os.PathLike[str]"
