"""What a demo run is: its steps, its options (:class:`DemoConfig`) and what it produced
(:class:`DemoResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from clusterlens._validation import check_int
from clusterlens.errors import ParameterError

__all__ = ["STEPS", "GRADERS", "DemoConfig", "DemoResult"]

#: The steps of the demo, in order (name, what it does).
STEPS = (
    ("survey", "synthetic cluster fields with injected lenses (the truth)"),
    ("training-set", "mock lenses and non-lenses on the training fields (section 2.2)"),
    ("train", "train the lens finder (section 2.3, Figure 4)"),
    ("score", "score the survey (Figure 5)"),
    ("search", "human-in-the-loop iterations with simulated graders (Table 2, Figure 6)"),
    ("grade", "aggregate the graders' grades, export the catalog (section 4.1)"),
    ("crossmatch", "compare the candidates with the truth (section 4.2)"),
    ("report", "one HTML page with the figures (Figures 1, 2, 4-7)"),
)

#: The simulated graders' names.
GRADERS = ("ann", "bob", "cai")


@dataclass(frozen=True)
class DemoConfig:
    """Size and options of a demo run.

    Parameters
    ----------
    n_clusters : int
        Synthetic cluster fields in all; ``train_fraction`` of them are the training fields
        (mocks and negatives are made on them), the rest is the survey that is searched.
    train_fraction : float
        Fraction of the fields used to simulate the training set.
    lens_fraction : float
        Fraction of the survey fields that get an injected lens (a field whose lens fails
        the paper's cuts stays a non-lens).
    n_train_images : int
        Training-set images (half mock lenses, half untouched training fields).
    epochs : int
        Training epochs per iteration.
    iterations : int
        Search iterations (train, score, inspect the top ``k``, apply).
    k : int or None
        Objects inspected per iteration; None: a tenth of the survey (at least 5).
    widths : tuple of int
        Channels of the four ResNet-18 stages (the paper's network: 64, 128, 256, 512).
    crop : int
        Side of the centre crop the network sees [pixels]. The paper's 223 pixels (58")
        hold the widest arcs; the demo's 111 pixels (29") hold Einstein radii up to about
        14" (most mocks: median 7.4") and train four times faster, which matters more for a
        network trained for minutes.
    lr : float
        Adam learning rate (the narrow network learns at 3e-3 within a few epochs).
    batch_size : int
        Training batch size.
    grader_error : float
        Probability that a simulated grader gets a lens / non-lens call (or a grade) wrong.
    seed : int
        Seed of everything (fields, injections, training set, training, graders).
    workers : int
        Dask worker processes for simulating the training set (0: in this process).
    threads : int
        torch CPU threads; 1 on a busy shared machine (see docs/training.md).
    cutouts, catalog, known : path or None
        Real data instead of the synthetic survey: a folder of FITS cutouts
        (``<id>.fits``), the catalog of the objects (id, ra, dec; optional z, m500 [Msun])
        and a catalog of known lenses (ra, dec; optional grade) that stands in for the
        graders and the truth. The training set is still simulated on synthetic fields.
    progress : bool
        Progress bars of the steps.
    """

    n_clusters: int = 300
    train_fraction: float = 1 / 3
    lens_fraction: float = 0.15
    n_train_images: int = 1200
    epochs: int = 20
    iterations: int = 2
    k: int | None = None
    widths: tuple[int, ...] = (8, 16, 32, 64)
    crop: int = 111
    lr: float = 3e-3
    batch_size: int = 16
    grader_error: float = 0.05
    seed: int = 0
    workers: int = 2
    threads: int = 1
    cutouts: str | None = None
    catalog: str | None = None
    known: str | None = None
    progress: bool = True

    def __post_init__(self):
        o = "DemoConfig"
        for name, low in (
            ("n_clusters", 6),
            ("n_train_images", 8),
            ("epochs", 1),
            ("iterations", 1),
            ("batch_size", 1),
            ("crop", 16),
            ("seed", 0),
            ("workers", 0),
            ("threads", 1),
        ):
            # stored as Python ints: the options are compared as JSON on a rerun
            object.__setattr__(self, name, check_int(getattr(self, name), name, o, low=low))
        object.__setattr__(self, "k", check_int(self.k, "k", o, low=1, allow_none=True))
        for name in ("train_fraction", "lens_fraction"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0 < v < 1):
                raise ParameterError(f"The '{name}' parameter of {o} must be in (0, 1). Got {v!r}.")
        if not (0 <= self.grader_error <= 0.5):
            raise ParameterError(
                f"The 'grader_error' parameter of {o} must be in [0, 0.5]. "
                f"Got {self.grader_error!r}."
            )
        if not (self.lr > 0):
            raise ParameterError(f"The 'lr' parameter of {o} must be > 0. Got {self.lr!r}.")
        real = [self.cutouts, self.catalog, self.known]
        if any(v is not None for v in real) and not all(v is not None for v in real):
            raise ParameterError(
                "Real data needs all of cutouts, catalog and known (a catalog of known lenses "
                "that stands in for the graders and the truth)."
            )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @classmethod
    def quick(cls, **overrides) -> DemoConfig:
        """A small demo (under a minute on two CPU cores): 60 fields, 96 training images,
        2 epochs, 2 iterations, no Dask."""
        base = {"n_clusters": 60, "n_train_images": 96, "epochs": 2, "workers": 0}
        return cls(**{**base, **overrides})

    @property
    def real(self) -> bool:
        """True when the survey is real cutouts and a catalog."""
        return self.cutouts is not None

    @property
    def n_train_fields(self) -> int:
        """Synthetic fields the training set is made on (all of them for a real survey)."""
        if self.real:
            return self.n_clusters
        return max(2, int(round(self.n_clusters * self.train_fraction)))

    def fingerprint(self) -> dict:
        """The options that decide the outputs (not workers, threads, progress)."""
        d = asdict(self)
        for name in ("workers", "threads", "progress"):
            d.pop(name)
        d["widths"] = list(self.widths)
        return d


@dataclass
class DemoResult:
    """What a demo produced: the report's path, Table 2, the cross-match and timings."""

    out: Path
    report: Path
    table: object
    summary: dict
    seconds: dict = field(default_factory=dict)
