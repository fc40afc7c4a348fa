"""Hard-negative mining: the non-lenses the current network mistakes most for lenses.

Spirals, tidal features, edge-on members and artefacts that look like arcs are rare in a pool
of random negatives, so a network sees few of them and scores them high on a survey.  Scoring
a large pool of negatives with the current network and adding its highest-scoring ones to the
training set (Trainer option ``hard_negative_rounds``) concentrates training on them.
"""

from __future__ import annotations

import numpy as np
import torch

from clusterlens._validation import check_int
from clusterlens.errors import ParameterError

__all__ = ["hard_negative_subset", "mine_hard_negatives", "score_images"]


def _scorer_of(model, device):
    """A function (n, band, y, x) fluxes -> n scores (logits; larger = more lens-like),
    and the crop the model expects (None: unknown)."""
    from clusterlens.nets.checkpoint import LoadedCheckpoint
    from clusterlens.nets.committee import Committee, load_model

    if isinstance(model, str) or hasattr(model, "__fspath__"):
        model = load_model(model, map_location=device or "cpu")
    if isinstance(model, LoadedCheckpoint | Committee):
        return model.logits, model.crop
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], torch.nn.Module):
        network, transform = model
        was_training = network.training

        def logits(images):
            dev = next(network.parameters(), torch.empty(0)).device
            network.eval()
            try:
                with torch.inference_mode():
                    x = transform(torch.as_tensor(images, device=dev))
                    z = network(x).float()
            finally:
                network.train(was_training)
            return (z[:, 1] - z[:, 0]).cpu().numpy().astype(np.float64)

        return logits, None
    if hasattr(model, "predict"):  # a Scorer: probabilities rank the same as logits
        return model.predict, getattr(getattr(model, "config", None), "size", None)
    raise ParameterError(
        "The 'model' parameter of mine_hard_negatives must be a checkpoint or committee path, "
        "a LoadedCheckpoint, a Committee, a Scorer or a (network, transform) pair. "
        f"Got {type(model).__name__} instead."
    )


def score_images(model, pool, *, crop=None, batch_size: int = 64, device=None) -> np.ndarray:
    """Scores (logits, or probabilities for a Scorer) of every image of ``pool``, in order.

    ``model`` and ``pool`` as in :func:`mine_hard_negatives`.
    """
    from clusterlens.datasets import LensDataset, center_crop

    score, model_crop = _scorer_of(model, device)
    crop = crop if crop is not None else model_crop
    if isinstance(pool, str) or hasattr(pool, "__fspath__"):
        pool = LensDataset(pool)
    out = []
    n = len(pool)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if isinstance(pool, LensDataset):
            images = np.stack([pool[k][0] for k in range(start, stop)])
        else:
            images = np.asarray(pool[start:stop])
        images = images.astype(np.float32, copy=False)
        if crop is not None:
            images = center_crop(images, crop)
        out.append(np.asarray(score(np.ascontiguousarray(images)), dtype=np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def mine_hard_negatives(
    model, pool, n: int, *, exclude=None, crop=None, batch_size: int = 64, device=None
) -> np.ndarray:
    """Positions in ``pool`` of its ``n`` highest-scoring non-lenses, highest first.

    Parameters
    ----------
    model : path, LoadedCheckpoint, Committee, Scorer or (torch.nn.Module, transform)
        The current network (a checkpoint or committee manifest path is loaded).
    pool : LensDataset, path, or ndarray (N, band, y, x)
        Candidate negatives in nanomaggies.  For a dataset, images labelled 1 are skipped.
    n : int
        How many to return (fewer if the pool has fewer eligible images).
    exclude : array_like of int, optional
        Pool positions never to return (those added in earlier rounds).
    crop : int, optional
        Centre crop fed to the network (default: the checkpoint's training crop).
    batch_size : int
        Images per forward pass.
    device : str, optional
        Device for a model loaded from a path.

    Returns
    -------
    numpy.ndarray of int64
        Positions ``k`` of ``pool`` (``pool[k]``; for a dataset view ``pool.indices[k]`` is
        the dataset index, and :func:`hard_negative_subset` gives the view).  Ties keep pool
        order.
    """
    from clusterlens.datasets import LensDataset

    n = check_int(n, "n", "mine_hard_negatives", low=1)
    if isinstance(pool, str) or hasattr(pool, "__fspath__"):
        pool = LensDataset(pool)
    scores = score_images(model, pool, crop=crop, batch_size=batch_size, device=device)
    eligible = np.ones(scores.size, dtype=bool)
    if isinstance(pool, LensDataset):
        eligible &= pool.view_labels != 1
    if exclude is not None and len(exclude):
        eligible[np.asarray(exclude, dtype=np.int64)] = False
    candidates = np.flatnonzero(eligible)
    order = np.argsort(-scores[candidates], kind="stable")
    return candidates[order[: int(n)]].astype(np.int64)


def hard_negative_subset(pool, positions):
    """The view of a :class:`~clusterlens.datasets.LensDataset` pool at ``positions``."""
    return pool.subset(pool.indices[np.asarray(positions, dtype=np.int64)])
