"""Predictive uncertainty of the lens finder: Monte Carlo dropout and deep ensembles.

Uncertainty-based selection (BALD, :func:`clusterlens.loop.selection.bald`) needs, for every
object, several lens probabilities drawn from the network's posterior instead of one score.
Two standard approximations are offered:

* **Monte Carlo dropout** (Gal & Ghahramani 2016): a network built with ``dropout > 0``
  (``get_network("resnet18", dropout=0.3)``) is run ``n_samples`` times with its dropout
  layers active and everything else, batch norm included, in evaluation mode.  The built-in
  networks only drop the embedding before the head, so the convolutional body runs once and
  only the head is repeated: ``n_samples`` draws cost about one forward pass.
* **Deep ensembles** (Lakshminarayanan et al. 2017): several checkpoints of the same network
  trained with different seeds, one probability per member.  :class:`EnsembleTrainer` trains
  them inside the search loop and writes a small manifest (JSON) that
  :class:`~clusterlens.loop.networks.NetworkScorer` recognises.

Both return an array ``(n_samples, n_objects)`` of lens probabilities, the input of
:func:`~clusterlens.loop.selection.bald` and of ``SearchProject.iterate(strategy="bald")``.
The scorer's default, resumable path (:meth:`Scorer.score`) is untouched: it always scores
with dropout off.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from clusterlens._validation import check_int
from clusterlens.errors import ParameterError
from clusterlens.nets._runtime import forward_parts
from clusterlens.nets.committee import ENSEMBLE_FORMAT, read_ensemble, write_ensemble

__all__ = [
    "ENSEMBLE_FORMAT",
    "EnsembleTrainer",
    "mc_dropout",
    "has_dropout",
    "read_ensemble",
    "sample_logits",
    "write_ensemble",
]

_DROPOUT = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.AlphaDropout)


def _dropouts(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in module.modules() if isinstance(m, _DROPOUT)]


@contextlib.contextmanager
def mc_dropout(model: torch.nn.Module):
    """Within the block, ``model`` is in evaluation mode except its dropout layers.

    Batch norm keeps its running statistics (a batch of candidates must not change the
    normalisation of the others), while dropout draws a new mask on every call.  The
    previous training flags are restored on exit.
    """
    flags = {m: m.training for m in model.modules()}
    model.eval()
    for m in _dropouts(model):
        m.train()
    try:
        yield model
    finally:
        for m, flag in flags.items():
            m.training = flag


def sample_logits(model, x: torch.Tensor, n_samples: int, *, amp_dtype=None) -> torch.Tensor:
    """``n_samples`` Monte Carlo dropout draws of the logit difference (lens - non-lens).

    Parameters
    ----------
    model : torch.nn.Module
        A network whose dropout layers are in training mode (see :func:`mc_dropout`).
    x : Tensor, shape (batch, band, y, x)
        Transformed images.
    n_samples : int
        Number of draws.
    amp_dtype : torch dtype, optional
        Autocast dtype of the network body (the head always runs in float32).

    Returns
    -------
    Tensor, shape (n_samples, batch)
        float32 logit differences.  Draws use torch's global random generator (seed it,
        or use :meth:`Scorer.predict_samples`, for reproducible draws).

    Notes
    -----
    For networks with ``features`` and ``head`` whose dropout sits in the head only (the
    built-in ones), the body runs once and the head ``n_samples`` times; any other network
    runs ``n_samples`` full forward passes.
    """
    body_has_dropout = True
    if hasattr(model, "features") and hasattr(model, "head"):
        head_drop = set(_dropouts(model.head))
        body_has_dropout = any(m not in head_drop for m in _dropouts(model))
    if not body_has_dropout:
        features, _ = forward_parts(model, x, amp_dtype=amp_dtype)
        draws = [model.head(features).float() for _ in range(n_samples)]
    else:
        draws = [forward_parts(model, x, amp_dtype=amp_dtype)[1] for _ in range(n_samples)]
    logits = torch.stack(draws)
    return logits[..., 1] - logits[..., 0]


def has_dropout(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a dropout layer with a non-zero probability."""
    return any(getattr(m, "p", 0) > 0 for m in _dropouts(model))


# -- ensembles --------------------------------------------------------------------------------
# The ensemble manifest is read and written beside the committee manifest
# (clusterlens.nets.committee), which loads an ensemble as a mean committee.


class EnsembleTrainer:
    """A ``Trainer`` (search-loop protocol) that trains several members, e.g. with different
    seeds, and returns the manifest listing their checkpoints.

    Parameters
    ----------
    trainers : sequence of Trainer
        One trainer per member (at least 2), for example
        ``[NetworkTrainer(..., config=replace(config, seed=s)) for s in range(5)]``.
    work_dir : str or Path
        Folder of the manifests, named by the members' checkpoints (so a rerun after a kill
        finds it again; each member's own trainer resumes its training).
    committee : bool
        Write a committee manifest (:mod:`clusterlens.nets.committee`, mean of the members'
        probabilities, one score per object) instead of an ensemble manifest (one score per
        member, for BALD).
    """

    def __init__(self, trainers, work_dir, *, committee: bool = False):
        self.trainers = list(trainers)
        if len(self.trainers) < 2 or not all(hasattr(t, "train") for t in self.trainers):
            raise ParameterError(
                "The 'trainers' parameter of EnsembleTrainer must be a sequence of at least 2 "
                f"objects with a train() method. Got {trainers!r}."
            )
        self.work_dir = Path(work_dir)
        self.committee = bool(committee)

    def train(self, positives, negatives, previous_model) -> str:
        """Train every member; returns the path of the ensemble manifest (JSON)."""
        previous = None
        if previous_model:
            from clusterlens.nets.committee import Committee, is_committee_manifest

            if is_committee_manifest(previous_model):
                previous = Committee.load(previous_model).paths
            else:
                previous = read_ensemble(previous_model)
        members = []
        for i, trainer in enumerate(self.trainers):
            before = str(previous[i]) if previous and i < len(previous) else previous_model
            members.append(str(Path(trainer.train(positives, negatives, before)).resolve()))
        import hashlib

        key = hashlib.sha256("\n".join(members).encode()).hexdigest()[:16]
        if self.committee:
            from clusterlens.nets.committee import write_committee

            path = self.work_dir / f"committee-{key}.json"
            return str(write_committee(path, members).path)
        return str(write_ensemble(self.work_dir / f"ensemble-{key}.json", members))


def _check_n_samples(n_samples, owner: str) -> int:
    return check_int(n_samples, "n_samples", owner, low=1)
