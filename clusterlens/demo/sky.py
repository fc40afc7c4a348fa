"""The demo's synthetic sky: numbered cluster fields redrawn from their seed, the pool of
training fields the mocks are made on, and the grade a careful grader gives an injected lens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clusterlens.errors import ParameterError

if TYPE_CHECKING:  # for annotations only
    from clusterlens.mock import ClusterScene

__all__ = ["FieldPoolSky", "field_rng", "field_scene", "truth_grade"]


def field_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of field number ``index`` (a function of the two numbers only)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 7, int(index)]))


def field_scene(sky, seed: int, index: int):
    """Synthetic cluster field number ``index`` of the demo sky (deterministic)."""
    return sky.draw(field_rng(seed, index), "lens")


class FieldPoolSky:
    """A sky that draws from a fixed list of synthetic fields (the demo's training fields).

    Mock lenses use the even fields of the pool and negatives the odd ones, so negatives
    are other clusters, as in the paper. Each field is redrawn from its seed on demand, so
    the sky is small to send to Dask workers.

    Parameters
    ----------
    config : MockConfig
    seed : int
        Seed of the fields.
    indices : sequence of int
        Field numbers of the pool (at least 2).
    """

    def __init__(self, config, seed: int, indices):
        from clusterlens.mock import SyntheticSky

        self.sky = SyntheticSky(config)
        self.config = config
        self.seed = int(seed)
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.size < 2:
            raise ParameterError("FieldPoolSky needs at least 2 fields.")
        self._pools = {"lens": self.indices[0::2], "non-lens": self.indices[1::2]}

    def draw(self, rng: np.random.Generator, role: str = "lens") -> ClusterScene:
        """A field of the pool of ``role`` (``"lens"`` or ``"non-lens"``)."""
        pool = self._pools[role]
        return field_scene(self.sky, self.seed, int(pool[rng.integers(pool.size)]))

    def __repr__(self) -> str:
        return f"FieldPoolSky(seed={self.seed}, fields={self.indices.size})"


def truth_grade(n_members: int, arc_snr: float) -> str:
    """The grade a careful grader would give an injected lens (the paper's A/B/C table)."""
    from clusterlens.loop import cluster_criterion, grade_from_criteria

    arc = "prominent" if arc_snr >= 50 else ("visible" if arc_snr >= 20 else "invisible")
    return grade_from_criteria(cluster_criterion(int(n_members)), arc)
