"""Training datasets on disk: images, labels and the parameters that made them.

A dataset is one directory that is also a Zarr v3 group::

    DIR/
      zarr.json            group metadata; its attributes describe the dataset
      images/              Zarr array (N, n_bands, H, W), one image per chunk: int32
                           noise-quantised pixels (format version 2) or float32 (1)
      image_step/, image_offset/, noise_sigma/
                           quantised datasets: (N, n_bands) float64, pixel =
                           image_offset + image_step * images [nanomaggies]
      labels/              Zarr array (N,) int8: 1 lens, 0 non-lens (-1 until finalised)
      params.parquet       one row per image: ``index``, ``label`` and the simulator's
                           parameters (written by DatasetWriter.finalize)
      complete.json        written last, atomically: the dataset is complete
      _records/            per-image records while the dataset is being written

Images read back as float32 arrays shaped (band, y, x), bands in the order g, r, z, in
nanomaggies (AB zero point 22.5), like Legacy Surveys cutouts; new datasets store them as
integers of 1/8 of each image's measured noise (RMS error 0.036 sigma, 5x smaller:
:mod:`~clusterlens.datasets.encoding`).  One image per chunk means that any number
of processes (for example 50 Dask workers) can write distinct indices at once without locks:
each chunk is its own file, written to a temporary name and renamed.  An image counts as
written only when its record (label and parameters) exists, and the record is written after
the image data, so a run killed at any moment resumes with :meth:`DatasetWriter.missing`
without rewriting finished images and without trusting half-written ones.

:meth:`DatasetWriter.finalize` gathers the records into ``params.parquet`` and the ``labels``
array and then writes ``complete.json``; until then :class:`LensDataset` refuses to open the
dataset unless asked to (``allow_incomplete=True``).

The package follows the data flow: :mod:`~clusterlens.datasets.writer` (:class:`DatasetWriter`)
and :mod:`~clusterlens.datasets.reader` (:class:`LensDataset`) store and read the directory,
:mod:`~clusterlens.datasets.encoding` says how pixels are stored (noise-quantised integers
by default, or float32; :class:`DatasetImages` decodes them),
:mod:`~clusterlens.datasets.loading` holds what a training loader does with an image
(:func:`center_crop`, :class:`Augmentation`, :class:`TorchLensDataset`), and
:mod:`~clusterlens.datasets.toy` writes a toy set.  None of them imports torch.
"""

from clusterlens.datasets._format import FORMAT_NAME, FORMAT_VERSION, DatasetError
from clusterlens.datasets.encoding import DatasetImages
from clusterlens.datasets.loading import Augmentation, TorchLensDataset, center_crop
from clusterlens.datasets.reader import LensDataset
from clusterlens.datasets.toy import write_toy_dataset
from clusterlens.datasets.writer import DatasetWriter

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Augmentation",
    "DatasetError",
    "DatasetImages",
    "DatasetWriter",
    "LensDataset",
    "TorchLensDataset",
    "center_crop",
    "write_toy_dataset",
]
