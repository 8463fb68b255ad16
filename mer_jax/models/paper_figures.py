"""The parameter and FLOP counts (and CPU latencies) the papers report for each network, to print next to ours."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PaperFigures:
    """params, per-sample inference FLOPs and batch-1 CPU latency as a paper reports them (None: not
    reported), and where."""
    params: float | None
    flops: float | None
    source: str
    cpu_latency_ms: float | None = None


PAPER_FIGURES = {
    # "a little over 3 million" parameters; its FLOPs are only in image tables (5, 7, 9) we cannot read.
    # "around 50 ms" per inference on an Intel i7-1165G7 laptop CPU (section 4.3; "around 60 ms", 4.4).
    "dfrnet": PaperFigures(3.0e6, None, "DFR-Net section 4.3 (\"a little over 3M\"; 50 ms on an i7-1165G7)",
                           cpu_latency_ms=50.0),
    # Sections 3.4 and 4.3.6, Table 9, for 256 x 256 x 3 inputs; Table 1 as written gives 6.41M parameters
    # and 0.97 GFLOPs dense (mer_jax/models/dstnet.py, docs/deviations.md).
    "dstnet": PaperFigures(3.15e6, 64.77e6, "Adaptive DSTNet section 3.4"),
    # Table 4's "13.2 G FLOPs" matches our multiply-add count (half XLA's FLOPs; tests/test_edmdbn.py).
    "edmdbn": PaperFigures(50.8e6, 13.2e9, "EDMDBN Table 4 (FLOPs there = multiply-adds)"),
    "m3enet": PaperFigures(6.01e6, 142.87e6, "M3ENet Table 4"),
    # Section 3.2.5 gives only O(.) terms (Eq. 24-25; madvnet.complexity_terms evaluates them); no counts anywhere.
    "madvnet": PaperFigures(None, None, "MADV-Net reports no parameter or FLOP count (section 3.2.5: Eq. 24-25 only)"),
    "ststnet": PaperFigures(0.00167e6, 0.448e6, "Adaptive DSTNet Table 9"),
    # Table 9's Off-ApexNet takes 28 x 28 x 2 flow; mer_jax builds meb's version (docs/deviations.md).
    "offapexnet": PaperFigures(2.77e6, None, "Adaptive DSTNet Table 9 (original Off-ApexNet)"),
}
