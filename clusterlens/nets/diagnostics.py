"""Diagnostics: do the mocks look like real lenses to the network?  (The paper's Figure 3.)

Zhang et al. (2026, Figure 3) embed the network's features of simulated lenses and of known
real lenses in two dimensions with UMAP (McInnes et al. 2018): when the mocks are realistic,
the real lenses fall inside the mocks' cloud rather than in a region of their own.

* :func:`embed` runs a trained network over images and returns its pooled features, the
  vector the classification head sees (512 numbers per image for ResNet-18);
* :func:`project_2d` maps feature vectors to two dimensions: UMAP when the optional
  ``umap-learn`` package is installed, otherwise t-SNE from scikit-learn when that is
  installed, otherwise PCA (numpy's SVD: linear, so clusters overlap more, but always
  available); ``method=`` chooses explicitly;
* :func:`plot_embedding` draws the projection of several labelled groups (e.g. mock lenses,
  mock non-lenses, known lenses) like Figure 3.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from clusterlens.datasets import LensDataset, center_crop
from clusterlens.errors import ParameterError
from clusterlens.nets.checkpoint import LoadedCheckpoint, load_checkpoint
from clusterlens.nets.scoring import forward_parts

__all__ = ["METHODS", "embed", "plot_embedding", "project_2d"]

#: Accepted values of ``method`` in :func:`project_2d`.
METHODS = ("auto", "umap", "tsne", "pca")


def embed(model, images, *, batch_size: int = 64, size: int | None = None) -> np.ndarray:
    """Pooled features (the head's input) of a trained network for each image.

    Parameters
    ----------
    model : LoadedCheckpoint, str or Path
        A loaded checkpoint, or the path of one; its own input transform is applied.
    images : array (n, band, y, x) or LensDataset
        Fluxes [nanomaggies]; larger images are cut about their centre to ``size``.
    batch_size : int
        Images per forward pass.
    size : int, optional
        Side given to the network; default: the checkpoint's training crop (or the images'
        side when it has none).

    Returns
    -------
    numpy.ndarray, shape (n, n_features)
        float32 features (512 for ResNet-18).
    """
    checkpoint = model if isinstance(model, LoadedCheckpoint) else load_checkpoint(model)
    net = checkpoint.model.eval()
    if size is None:
        size = checkpoint.state.get("config", {}).get("crop")
    if isinstance(images, LensDataset):
        data = images
        side = size or data.image_shape[-1]
        images = np.stack([data.crop(k, side) for k in range(len(data))])
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ParameterError(
            "The 'images' parameter of embed must be shaped (n, band, y, x). "
            f"Got {images.shape} instead."
        )
    if size is not None:
        images = np.ascontiguousarray(center_crop(images, size))
    if not np.isfinite(images).all():
        raise ParameterError("The 'images' parameter of embed holds NaN/inf pixels.")
    device = next(net.parameters()).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start : start + batch_size]).to(device)
            features, _ = forward_parts(net, checkpoint.transform(x))
            if features is None:
                raise ParameterError(
                    "The network has no features()/head (or timm forward_features) to "
                    "take embeddings from."
                )
            out.append(features.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _pca(features: np.ndarray) -> np.ndarray:
    centred = features - features.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    # Fix the sign of each axis (SVD leaves it arbitrary): the largest |value| is positive.
    signs = np.sign(coords[np.abs(coords).argmax(0), range(coords.shape[1])])
    return coords * np.where(signs == 0, 1, signs)


def project_2d(features, *, method: str = "auto", seed: int = 0, **options) -> np.ndarray:
    """Map feature vectors to two dimensions for plotting.

    Parameters
    ----------
    features : array (n, d)
        For example the output of :func:`embed` for mocks and real lenses together (project
        them together so that they share one map).
    method : {"auto", "umap", "tsne", "pca"}
        ``"auto"``: UMAP if ``umap-learn`` is installed (the paper's choice), else t-SNE if
        scikit-learn is, else PCA.  Features are standardised (zero mean, unit variance per
        dimension) first.
    seed : int
        Seed of UMAP's and t-SNE's random initialisation.
    **options
        Passed to ``umap.UMAP`` or ``sklearn.manifold.TSNE`` (e.g. ``n_neighbors=15``,
        ``perplexity=30``).

    Returns
    -------
    numpy.ndarray, shape (n, 2)
    """
    if method not in METHODS:
        raise ParameterError(
            f"The 'method' parameter of project_2d must be one of {METHODS}. "
            f"Got {method!r} instead."
        )
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 3 or not np.isfinite(features).all():
        raise ParameterError(
            "The 'features' parameter of project_2d must be a finite (n, d) array with "
            f"n >= 3. Got shape {features.shape} instead."
        )
    scale = features.std(0)
    features = (features - features.mean(0)) / np.where(scale > 0, scale, 1.0)
    if method == "auto":
        if importlib.util.find_spec("umap") is not None:
            method = "umap"
        elif importlib.util.find_spec("sklearn") is not None:
            method = "tsne"
        else:
            method = "pca"
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise ParameterError(
                "method='umap' needs the optional umap-learn package: pip install umap-learn."
            ) from exc
        return umap.UMAP(n_components=2, random_state=seed, **options).fit_transform(features)
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError as exc:
            raise ParameterError("method='tsne' needs scikit-learn.") from exc
        options.setdefault("perplexity", min(30.0, (len(features) - 1) / 3))
        return TSNE(n_components=2, random_state=seed, init="pca", **options).fit_transform(
            features
        )
    return _pca(features)


def plot_embedding(coords, groups, *, ax=None, colors=None, path=None):
    """Scatter a 2-d projection, one colour per group (the paper's Figure 3).

    Parameters
    ----------
    coords : array (n, 2)
        From :func:`project_2d`.
    groups : sequence of str, length n
        The group of each point, e.g. ``"mock lens"``, ``"mock non-lens"``, ``"known lens"``;
        groups are drawn in order of first appearance, so put the real lenses last to draw
        them on top.
    ax : matplotlib Axes, optional
    colors : dict of group -> colour, optional
    path : str or Path, optional
        Save the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    coords = np.asarray(coords, dtype=float)
    groups = np.asarray([str(g) for g in groups])
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(groups):
        raise ParameterError(
            "The 'coords' parameter of plot_embedding must be (n, 2) with one group per "
            f"point. Got {coords.shape} and {len(groups)} groups."
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    else:
        fig = ax.figure
    for k, group in enumerate(dict.fromkeys(groups)):
        sel = groups == group
        color = (colors or {}).get(group, f"C{k}")
        ax.scatter(
            *coords[sel].T,
            s=8 if sel.sum() > 200 else 18,
            color=color,
            label=group,
            alpha=0.7,
            edgecolors="none",
        )
    ax.set_xlabel("dimension 1")
    ax.set_ylabel("dimension 2")
    ax.legend(markerscale=2, fontsize="small")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
