"""Write a training set of mock lenses and untouched negatives, in parallel on Dask.

Image ``i`` is made from the random stream ``numpy.random.SeedSequence([seed, i])`` alone,
so a dataset does not depend on how many workers made it, nor in which order; images
``0 .. n_positive - 1`` are lenses (label 1), the rest untouched cutouts of other clusters
(label 0).  Images go through :class:`clusterlens.datasets.DatasetWriter` (one chunk per
image, its record written after its pixels): a killed run resumes with only the missing
indices, and the dataset is marked complete only by the final ``finalize``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from clusterlens._dask import dask_client
from clusterlens._provenance import cosmology_description
from clusterlens._validation import check_int
from clusterlens.datasets import DatasetWriter, LensDataset
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.mock.config import MockConfig, config_to_dict
from clusterlens.mock.simulator import LensRejected, MockLensSimulator, observation_params
from clusterlens.mock.sky import SyntheticSky

__all__ = ["simulate_dataset", "make_image", "image_rng", "acceptance_summary", "PARAM_UNITS"]

_CREATOR = "clusterlens.mock"

_ARCSEC = (
    "einstein_radius einstein_radius_truncated einstein_radius_zref halo_rs halo_alpha_rs "
    "members_theta_e_max bcg_theta_e source_x source_y source_r_e second_source_x "
    "second_source_y arc_radius psf_fwhm_g psf_fwhm_r psf_fwhm_z"
).split()
_MAG = (
    "source_mag_g source_mag_r source_mag_z arc_mag_g arc_mag_r arc_mag_z second_source_mag_r "
    "source_g_minus_r source_r_minus_z depth_g depth_r depth_z"
).split()
#: Units of the physical columns of a mock dataset's ``params`` table (the others are
#: dimensionless, counts, flags or log10 values named ``log_*``); written into the dataset's
#: metadata as ``param_units`` and set on ``LensDataset.params``.
PARAM_UNITS = {
    **dict.fromkeys(_ARCSEC, "arcsec"),
    **dict.fromkeys(_MAG, "mag"),
    "m500": "Msun",
    "halo_phi": "deg",
    "source_phi": "deg",
    "bcg_sigma": "km / s",
    "bcg_r_cut_kpc": "kpc",
    "arc_surface_brightness": "mag / arcsec2",
}


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of image ``index`` of a dataset made with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def make_image(index: int, *, seed: int, n_positive: int, simulator: MockLensSimulator, sky):
    """Image ``index`` of a dataset: ``(image float32 (3, crop, crop), label, params)``."""
    rng = image_rng(seed, index)
    if index < n_positive:
        sel = simulator.config.selection
        stats: dict = {}
        for tried in range(1, sel.max_cluster_draws + 1):
            scene = sky.draw(rng, "lens")
            try:
                result = simulator.simulate(scene, rng, stats=stats)
            except LensRejected:
                continue
            params = dict(result.params)
            params.update(getattr(scene, "sky_params", {}))  # what the synthetic sky painted
            params.update({f"tries_{k}": v for k, v in stats.items()})
            params["tries_clusters"] = tried
            return result.image, 1, params
        raise ClusterlensError(
            f"Image {index}: no cluster out of {sel.max_cluster_draws} drawn gave an accepted "
            f"lens (counts: {stats}). The configuration almost never makes a lens: lower "
            "selection.min_einstein_radius or selection.min_arc_snr, or raise the cluster "
            "masses ([clusters] log_m500_range)."
        )
    scene = sky.draw(rng, "non-lens")
    params = {
        "z_lens": scene.z_lens,
        "m500": scene.m500,
        "log_m500": math.log10(scene.m500),
        "n_members": scene.n_members,
    }
    params.update(observation_params(simulator.scene_conditions(scene)))
    if scene.cluster_id is not None:
        params["cluster_id"] = str(scene.cluster_id)
    params.update(getattr(scene, "sky_params", {}))
    return simulator.crop_cutout(scene.image), 0, params


def acceptance_summary(params) -> dict:
    """How much drawing the accepted lenses of a dataset cost, from its parameter table.

    Parameters
    ----------
    params : astropy.table.Table
        ``LensDataset.params`` of a dataset made by :func:`simulate_dataset`.

    Returns
    -------
    dict
        ``n_lenses``; per lens on average ``clusters``, ``halo_draws``, ``sources``
        (rendered sources); ``einstein_radius_acceptance`` (fraction of halo draws that
        could reach the minimum Einstein radius: the others were rejected before any
        rendering) and ``snr_acceptance`` (fraction of rendered sources kept by the
        visibility rule).
    """
    lens = np.asarray(params["label"]) == 1
    if not lens.any():
        return {"n_lenses": 0}

    def total(name):
        return float(np.sum(np.asarray(params[name], dtype=float)[lens]))

    n = int(lens.sum())
    halos, rejected = total("tries_halo_draws"), total("tries_halo_rejected")
    sources, faint = total("tries_source_draws"), total("tries_snr_rejected")
    return {
        "n_lenses": n,
        "clusters": total("tries_clusters") / n,
        "halo_draws": halos / n,
        "sources": sources / n,
        "einstein_radius_acceptance": 1.0 - rejected / halos if halos else float("nan"),
        "snr_acceptance": 1.0 - faint / sources if sources else float("nan"),
    }


def _write_batch(indices, writer, seed, n_positive, simulator, sky):
    """Dask task: make and write some images; returns how many."""
    import numba

    # One numba thread per task: the maps are small, and parallel kernels on a machine whose
    # cores are already busy with other workers spend more time waiting than computing
    # (measured: 15-40 ms instead of 0.1-0.5 ms per sub-pixel ray-trace call).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for index in indices:
            image, label, params = make_image(
                int(index), seed=seed, n_positive=n_positive, simulator=simulator, sky=sky
            )
            writer.write(int(index), image, label, params)
    finally:
        numba.set_num_threads(threads)
    return len(indices)


def simulate_dataset(
    path,
    n_images: int,
    config: MockConfig | None = None,
    *,
    seed: int = 0,
    n_positive: int | None = None,
    sky=None,
    population=None,
    workers: int | None = 2,
    scheduler: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
    overwrite: bool = False,
    storage: str | None = None,
) -> LensDataset:
    """Write ``n_images`` images (half mock lenses, half untouched cutouts) to ``path``.

    Parameters
    ----------
    path : str or Path
        Dataset directory (:mod:`clusterlens.datasets` format); an unfinished one made with
        the same configuration and seed is resumed.
    n_images : int
        Total number of images N.
    config : MockConfig, optional
        Default: the realistic model (``MockConfig()``); ``preset_config("paper")`` is the
        paper's Table 1.
    seed : int
        Dataset seed; image ``i`` uses ``SeedSequence([seed, i])``.
    n_positive : int, optional
        Number of lenses (indices ``0 .. n_positive - 1``); default ``n_images // 2``.
    sky : SyntheticSky or CatalogSky, optional
        Where clusters come from; default the built-in :class:`SyntheticSky`.
    population : source population, optional
        Default ``SourcePopulation(config.source)``.
    workers : int or None
        Worker processes of a local Dask cluster (one thread each); ``0`` runs in this
        process without Dask.  Ignored when ``scheduler`` is given.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``), e.g. one started by
        dask-jobqueue on an HPC cluster.
    batch_size : int
        Images per Dask task.
    progress : bool
        Show a tqdm progress bar.
    overwrite : bool
        Delete an existing dataset at ``path`` first.
    storage : {"quantized", "float32"}, optional
        How the images are stored (:class:`~clusterlens.datasets.DatasetWriter`): by default
        integers of 1/8 of each image's noise (0.10 MB per 223^2 image, RMS error 0.036
        sigma), or the format an unfinished dataset being resumed already has.

    Returns
    -------
    LensDataset
        The finished dataset (images, labels, ``params`` table).
    """
    owner = "simulate_dataset"
    config = MockConfig() if config is None else config
    n_images = check_int(n_images, "n_images", owner, low=1)
    n_positive = n_images // 2 if n_positive is None else n_positive
    n_positive = check_int(n_positive, "n_positive", owner, low=0, high=n_images)
    seed = check_int(seed, "seed", owner, low=0)
    workers = check_int(workers, "workers", owner, low=0, allow_none=True)
    batch_size = check_int(batch_size, "batch_size", owner, low=1)
    simulator = MockLensSimulator(config, population=population)
    sky = SyntheticSky(config) if sky is None else sky
    if not hasattr(sky, "draw"):
        raise ParameterError(
            f"The 'sky' parameter of {owner} must be a SyntheticSky or CatalogSky (with draw). "
            f"Got {type(sky).__name__} instead."
        )
    path = Path(path)
    crop = config.image.crop_size
    attrs = {
        "config": config_to_dict(config),
        "seed": int(seed),
        "n_positive": int(n_positive),
        "sky": repr(sky),
        "population": type(simulator.population).__name__,
        "cosmology": cosmology_description(simulator.cosmology),
        "param_units": PARAM_UNITS,
    }
    # the writer refuses a dataset another run (other seed or configuration) is writing
    writer = DatasetWriter(
        path,
        n_images,
        (3, crop, crop),
        bands=("g", "r", "z"),
        pixel_scale=config.observation.pixel_scale,
        creator=_CREATOR,
        attrs=attrs,
        storage=storage,
        overwrite=overwrite,
    )
    if writer.complete:
        return LensDataset(path)
    todo = writer.missing()
    batches = [todo[i : i + batch_size].tolist() for i in range(0, todo.size, batch_size)]
    bar = None
    if progress:
        from clusterlens._progress import progress as progress_bar

        bar = progress_bar(
            total=n_images, initial=n_images - todo.size, unit="img", desc="simulate"
        )
    args = (writer, int(seed), int(n_positive), simulator, sky)
    try:
        if scheduler is None and workers == 0:
            for batch in batches:
                done = _write_batch(batch, *args)
                if bar is not None:
                    bar.update(done)
        else:
            _run_dask(batches, args, workers=workers, scheduler=scheduler, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    return writer.finalize()


def _run_dask(batches, args, *, workers, scheduler, bar):
    from dask.distributed import as_completed

    with dask_client(workers, scheduler) as client:
        shared = client.scatter(list(args), broadcast=True)
        futures = [client.submit(_write_batch, b, *shared, pure=False) for b in batches]
        for fut in as_completed(futures):
            done = fut.result()  # re-raises a worker's error here
            if bar is not None:
                bar.update(done)
