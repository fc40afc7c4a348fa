"""Where the tests find the real data of ``shared/data`` (beside the repository)."""

from pathlib import Path

import pytest

_NAME = "zhang2026_cluster_lens_candidates.csv"
_CANDIDATES = [
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / _NAME,
    Path("/work/shared/data") / _NAME,
]

#: The published catalog of 485 cluster-lens candidates (Zhang et al.), or a path that does
#: not exist when the checkout has no ``shared/`` beside it.
ZHANG_CATALOG = next((p for p in _CANDIDATES if p.is_file()), _CANDIDATES[0])

needs_zhang = pytest.mark.skipif(
    not ZHANG_CATALOG.is_file(), reason=f"the published catalog {_NAME} is not beside the repo"
)
