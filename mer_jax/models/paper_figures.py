"""The parameter and FLOP counts the papers report for each network, to print next to ours."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PaperFigures:
    """params and per-sample inference FLOPs as a paper reports them (None: not reported), and where."""
    params: float | None
    flops: float | None
    source: str


PAPER_FIGURES = {
    # Table 4's "13.2 G FLOPs" matches our multiply-add count (half XLA's FLOPs; tests/test_edmdbn.py).
    "edmdbn": PaperFigures(50.8e6, 13.2e9, "EDMDBN Table 4 (FLOPs there = multiply-adds)"),
    "m3enet": PaperFigures(6.01e6, 142.87e6, "M3ENet Table 4"),
    "ststnet": PaperFigures(0.00167e6, 0.448e6, "Adaptive DSTNet Table 9"),
    # Table 9's Off-ApexNet takes 28 x 28 x 2 flow; mer_jax builds meb's version (docs/deviations.md).
    "offapexnet": PaperFigures(2.77e6, None, "Adaptive DSTNet Table 9 (original Off-ApexNet)"),
}
