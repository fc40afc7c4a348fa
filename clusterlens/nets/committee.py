"""Committees: several networks scored together as one model.

HOLISMOKES (Cañameras et al. 2024) found that averaging networks trained with different seeds
or architectures was the largest single gain of their lens finders.  A :class:`Committee`
holds several checkpoints (each with its own input transform and calibration) and combines
their per-image scores:

* ``"mean"`` (default): the mean of the members' lens probabilities;
* ``"logistic"``: a logistic regression on the members' logits,
  ``z = sum_k w_k z_k + b``, fitted on a validation set (:meth:`Committee.fit_combination`).

A committee lives in one JSON manifest (format ``clusterlens-committee-1``) listing the member
checkpoints with their SHA-256 checksums (a changed or replaced member is refused), the
combination and its weights, and an optional temperature applied to the combined logit
(:meth:`Committee.calibrate`).  :func:`load_model` reads a checkpoint or a manifest, and
:class:`~clusterlens.nets.scoring.Scorer`, :func:`~clusterlens.nets.evaluation.evaluate`,
``clusterlens score``/``evaluate`` and the search loop's
:class:`~clusterlens.nets.search.NetworkScorer` all take either.  Deep-ensemble manifests of
:class:`~clusterlens.nets.uncertainty.EnsembleTrainer` (per-member scores for BALD) are a
different format; :meth:`Committee.from_ensemble` turns one into a committee.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.nets.checkpoint import CheckpointError, LoadedCheckpoint, load_checkpoint

__all__ = [
    "COMBINATIONS",
    "COMMITTEE_FORMAT",
    "Committee",
    "combine_logits",
    "fit_logistic_combination",
    "is_committee_manifest",
    "load_model",
    "write_committee",
]

#: ``format`` field of a committee manifest.
COMMITTEE_FORMAT = "clusterlens-committee-1"
#: Accepted combinations.
COMBINATIONS = ("mean", "logistic")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def combine_logits(member_logits, combination: dict) -> np.ndarray:
    """Combine ``(n_members, n)`` member logits into ``n`` committee logits.

    ``{"kind": "mean"}``: the logit of the mean member probability, computed in log space so
    that ``sigmoid(result)`` is the mean probability even where it rounds to 0 or 1;
    ``{"kind": "logistic", "weights": [...], "bias": b}``: ``weights @ z + bias``.
    """
    z = np.asarray(member_logits, dtype=np.float64)
    if z.ndim != 2:
        raise ParameterError(f"combine_logits needs (n_members, n) logits; got {z.shape}.")
    kind = combination.get("kind")
    if kind == "mean":
        m = z.shape[0]
        log_p = np.logaddexp.reduce(_log_sigmoid(z), axis=0) - np.log(m)
        log_q = np.logaddexp.reduce(_log_sigmoid(-z), axis=0) - np.log(m)
        return log_p - log_q
    if kind == "logistic":
        w = np.asarray(combination["weights"], dtype=np.float64)
        if w.shape != (z.shape[0],):
            raise ParameterError(
                f"The committee has {z.shape[0]} members but {w.size} combination weights."
            )
        return w @ z + float(combination.get("bias", 0.0))
    raise ParameterError(f"Unknown committee combination {kind!r}; expected one of {COMBINATIONS}.")


def fit_logistic_combination(member_logits, labels, *, l2: float = 1e-3) -> dict:
    """Fit ``z = w @ z_members + b`` by minimising the mean cross-entropy (plus ``l2 |w|^2``)
    on validation logits ``(n_members, n)`` and labels; returns the combination dict."""
    from scipy.optimize import minimize

    z = np.asarray(member_logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != y.size:
        raise ParameterError(
            f"fit_logistic_combination: logits {z.shape} do not match {y.size} labels."
        )
    if len(np.unique(y)) < 2:
        raise ParameterError("Fitting a combination needs lenses and non-lenses.")
    m = z.shape[0]

    def loss(theta):
        w, b = theta[:m], theta[m]
        s = w @ z + b
        # mean of log(1 + exp(-s)) for lenses, log(1 + exp(s)) for non-lenses
        value = np.mean(np.logaddexp(0.0, np.where(y == 1, -s, s))) + l2 * w @ w
        p = 1.0 / (1.0 + np.exp(-np.clip(s, -700, 700)))
        g = (p - y) / y.size
        return value, np.r_[z @ g + 2 * l2 * w, g.sum()]

    theta0 = np.r_[np.full(m, 1.0 / m), 0.0]
    result = minimize(loss, theta0, jac=True, method="L-BFGS-B")
    return {
        "kind": "logistic",
        "weights": [float(v) for v in result.x[:m]],
        "bias": float(result.x[m]),
        "val_nll": float(result.fun),
        "n_val": int(y.size),
    }


class Committee:
    """Several checkpoints scored together as one model.

    Parameters
    ----------
    members : sequence of LoadedCheckpoint or paths
        At least 2 checkpoints trained on the same crop and bands.
    combination : {"mean", "logistic"} or dict
        ``"mean"`` (default) or a fitted combination dict (see :func:`combine_logits`).
    temperature : float
        Divides the combined logit (1: none; see :meth:`calibrate`).

    Attributes
    ----------
    members : list of LoadedCheckpoint
    paths : list of Path or None
        Where each member was read from (None for members given in memory).
    crop, in_channels : int
        The members' common training crop and number of bands.
    """

    def __init__(self, members, combination="mean", *, temperature: float = 1.0):
        loaded, paths = [], []
        for m in members:
            if isinstance(m, LoadedCheckpoint):
                loaded.append(m)
                paths.append(None)
            else:
                loaded.append(load_checkpoint(m, map_location="cpu"))
                paths.append(Path(m))
        if len(loaded) < 2:
            raise ParameterError(f"A committee needs at least 2 members. Got {len(loaded)}.")
        crops = {m.crop for m in loaded}
        channels = {m.in_channels for m in loaded}
        if len(crops) != 1 or len(channels) != 1:
            raise ParameterError(
                "The members of a committee must share their training crop and bands; got "
                f"crops {sorted(crops, key=str)} and {sorted(channels)} bands."
            )
        if isinstance(combination, str):
            combination = {"kind": combination}
        if not isinstance(combination, dict) or combination.get("kind") not in COMBINATIONS:
            raise ParameterError(
                f"The 'combination' parameter of Committee must be one of {COMBINATIONS} or a "
                f"fitted combination dict. Got {combination!r} instead."
            )
        if combination["kind"] == "logistic" and "weights" not in combination:
            raise ParameterError(
                "A 'logistic' committee needs fitted weights: build it with 'mean' and call "
                "fit_combination(val, 'logistic')."
            )
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ParameterError(f"The committee temperature must be > 0. Got {temperature!r}.")
        self.members = loaded
        self.paths = paths
        self.combination = dict(combination)
        self.temperature = float(temperature)
        self.crop = loaded[0].crop
        self.in_channels = loaded[0].in_channels
        self.path: Path | None = None

    def __repr__(self) -> str:
        names = [m.state["network"]["name"] for m in self.members]
        return f"Committee({len(self.members)} members {names}, {self.combination['kind']})"

    def __len__(self) -> int:
        return len(self.members)

    @property
    def model(self):
        """Not defined for a committee (several networks): use ``members[k].model``."""
        raise ParameterError(
            "A committee has several networks; use committee.members[k].model, or score it "
            "as a whole (Monte Carlo dropout samples need a single checkpoint)."
        )

    # -- scores -------------------------------------------------------------------------
    def member_logits(self, images) -> np.ndarray:
        """``(n_members, n)`` calibrated logits of each member for (n, band, y, x) fluxes."""
        return np.stack([m.logits(images) for m in self.members])

    def combine(self, member_logits) -> np.ndarray:
        """Committee logits (temperature applied) from ``(n_members, n)`` member logits."""
        return combine_logits(member_logits, self.combination) / self.temperature

    def logits(self, images, *, calibrated: bool = True) -> np.ndarray:
        """Committee logits for (n, band, y, x) fluxes (``calibrated=False``: temperature 1)."""
        z = combine_logits(self.member_logits(images), self.combination)
        return z / self.temperature if calibrated else z

    def predict(self, images) -> np.ndarray:
        """Committee lens probabilities for (n, band, y, x) fluxes [nanomaggies]."""
        from scipy.special import expit

        return expit(self.logits(images))

    # -- fitting ------------------------------------------------------------------------
    def _val_member_logits(self, val, batch_size: int):
        from clusterlens.nets.calibration import dataset_batches

        zs, ys = [], []
        for images, labels in dataset_batches(val, self.crop, batch_size):
            zs.append(self.member_logits(images))
            ys.append(labels)
        return np.concatenate(zs, axis=1), np.concatenate(ys)

    def fit_combination(self, val, kind: str = "logistic", *, batch_size: int = 64) -> dict:
        """Fit the combination on a validation dataset (``"logistic"``) or reset it to
        ``"mean"``; returns the combination dict (also kept in ``self.combination``)."""
        if kind not in COMBINATIONS:
            raise ParameterError(f"The 'kind' must be one of {COMBINATIONS}. Got {kind!r}.")
        if kind == "mean":
            self.combination = {"kind": "mean"}
        else:
            z, y = self._val_member_logits(val, batch_size)
            self.combination = fit_logistic_combination(z, y)
        return self.combination

    def calibrate(self, val, *, batch_size: int = 64):
        """Fit the temperature of the combined logit on a validation dataset; returns a
        :class:`~clusterlens.nets.calibration.CalibrationReport`."""
        from clusterlens.nets.calibration import calibration_report

        z, y = self._val_member_logits(val, batch_size)
        report = calibration_report(combine_logits(z, self.combination), y)
        self.temperature = report.temperature
        return report

    # -- files --------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the manifest (JSON, atomically); members are stored relative to it when
        they sit in its folder or below, absolute otherwise."""
        from clusterlens._io import atomic_write_bytes

        if any(p is None for p in self.paths):
            raise ParameterError(
                "A committee built from checkpoints in memory cannot be saved: build it from "
                "checkpoint files."
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        base = path.parent.resolve()
        members = []
        for p in self.paths:
            resolved = p.resolve()
            try:
                name = str(resolved.relative_to(base))
            except ValueError:
                name = str(resolved)
            members.append({"path": name, "sha256": _sha256(resolved)})
        body = {
            "format": COMMITTEE_FORMAT,
            "members": members,
            "combination": self.combination,
            "temperature": self.temperature,
            "crop": self.crop,
        }
        atomic_write_bytes(path, json.dumps(body, indent=1).encode())
        self.path = path
        return path

    @classmethod
    def load(cls, path, *, map_location="cpu") -> Committee:
        """Read a committee manifest, checking every member's checksum."""
        path = Path(path)
        body = _read_manifest(path)
        members, paths = [], []
        for entry in body["members"]:
            member = Path(entry["path"])
            member = member if member.is_absolute() else path.parent / member
            if not member.is_file():
                raise CheckpointError(
                    f"The committee {str(path)!r} lists {member}, which is missing."
                )
            if entry.get("sha256") and _sha256(member) != entry["sha256"]:
                raise CheckpointError(
                    f"The checkpoint {member} of the committee {str(path)!r} has changed since "
                    "the committee was written (SHA-256 mismatch); write the committee again."
                )
            members.append(load_checkpoint(member, map_location=map_location))
            paths.append(member)
        committee = cls(
            members, body.get("combination", "mean"), temperature=body.get("temperature", 1.0)
        )
        committee.paths = paths
        committee.path = path
        return committee

    @classmethod
    def from_ensemble(cls, manifest) -> Committee:
        """A mean committee of the members of an :class:`EnsembleTrainer` manifest."""
        members = read_ensemble(manifest)
        if members is None:
            raise ParameterError(f"{str(manifest)!r} is not an ensemble manifest.")
        return cls(members)


def _read_json_manifest(path: Path, format_name: str, what: str, error: type) -> dict:
    """The JSON body of a manifest whose ``format`` is ``format_name``, or ``error`` naming
    ``what`` (``"committee"``, ``"ensemble"``) for an unreadable or foreign file."""
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise error(f"Cannot read the {what} manifest {str(path)!r}: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != format_name:
        article = "an" if what[0] in "aeiou" else "a"
        raise error(f"{str(path)!r} is not {article} {what} manifest (format {format_name!r}).")
    return body


def _read_manifest(path: Path) -> dict:
    body = _read_json_manifest(path, COMMITTEE_FORMAT, "committee", CheckpointError)
    if not isinstance(body.get("members"), list) or len(body["members"]) < 2:
        raise CheckpointError(f"The committee manifest {str(path)!r} lists fewer than 2 members.")
    return body


def is_committee_manifest(path) -> bool:
    """Whether ``path`` is a JSON file whose ``format`` is a committee manifest's."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("format") == COMMITTEE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write_committee(
    path, checkpoints, *, combination: str = "mean", val=None, calibrate: bool = False
) -> Committee:
    """Build a committee of ``checkpoints`` and write its manifest to ``path``.

    Parameters
    ----------
    path : str or Path
        The manifest (``*.json``).
    checkpoints : sequence of paths
        Member checkpoints (at least 2).
    combination : {"mean", "logistic"}
        ``"logistic"`` is fitted on ``val``.
    val : LensDataset or path, optional
        Validation set for a logistic combination and for ``calibrate``.
    calibrate : bool
        Fit the committee's temperature on ``val``.

    Returns
    -------
    Committee
        The committee (``committee.path`` is the manifest).
    """
    committee = Committee(checkpoints)
    if (combination == "logistic" or calibrate) and val is None:
        raise ParameterError("A logistic combination or calibration needs a 'val' dataset.")
    if combination != "mean":
        committee.fit_combination(val, combination)
    if calibrate:
        committee.calibrate(val)
    committee.save(path)
    return committee


def load_model(path, *, map_location="cpu") -> LoadedCheckpoint | Committee:
    """A checkpoint (``*.pt``) or a committee manifest (``*.json``), loaded."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return Committee.load(path, map_location=map_location)
    return load_checkpoint(path, map_location=map_location)


#: ``format`` field of an ensemble manifest (:class:`clusterlens.nets.uncertainty.EnsembleTrainer`).
ENSEMBLE_FORMAT = "clusterlens-ensemble-1"


def write_ensemble(path, checkpoints) -> Path:
    """Write an ensemble manifest (JSON) listing ``checkpoints``; returns its path.

    The manifest is written under a temporary name and renamed, so it is never half-written.
    Relative checkpoint paths are stored as given and read relative to the manifest.
    """
    from clusterlens._io import atomic_write_bytes

    members = [str(c) for c in checkpoints]
    if len(members) < 2:
        raise ParameterError(
            f"An ensemble needs at least 2 checkpoints. Got {len(members)} ({members})."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": ENSEMBLE_FORMAT, "members": members}
    atomic_write_bytes(path, json.dumps(body, indent=1).encode())
    return path


def read_ensemble(path) -> list[Path] | None:
    """The member checkpoints of the ensemble manifest at ``path``, or None if ``path`` is
    not an ensemble manifest: a single ``.pt`` checkpoint, or a committee manifest
    (:mod:`clusterlens.nets.committee`), which is scored as one model."""
    path = Path(path)
    if path.suffix.lower() != ".json" or is_committee_manifest(path):
        return None
    body = _read_json_manifest(path, ENSEMBLE_FORMAT, "ensemble", ClusterlensError)
    return [p if (p := Path(m)).is_absolute() else path.parent / p for m in body["members"]]
