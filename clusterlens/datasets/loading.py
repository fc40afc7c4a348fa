"""What a training loader does with stored images: centre crops, symmetry augmentations and
the map-style dataset that ``torch.utils.data.DataLoader`` reads.

Nothing here imports torch: items are numpy arrays, which the loader's default collate turns
into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clusterlens._validation import check_int

__all__ = ["Augmentation", "TorchLensDataset", "center_crop"]


def center_crop(images, size: int) -> np.ndarray:
    """Cut the central ``size`` x ``size`` pixels out of images shaped (..., H, W).

    The crop keeps the centre pixel of an odd-sized image at the centre of the result (the
    paper cuts 371 -> 223 pixels, i.e. 100" -> 60" at 0.27"/pixel, dropping 74 pixels on
    each side).  Works on numpy arrays and torch tensors; returns a view.
    """
    height, width = images.shape[-2], images.shape[-1]
    check_int(size, "size", "center_crop", low=1, high=min(height, width))
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size]


@dataclass(frozen=True)
class Augmentation:
    """Random symmetry transformations that keep a lens a lens.

    Rotations by multiples of 90 degrees and flips map an arc onto an arc without
    interpolating pixels; shifts by a few whole pixels move the cluster off the exact centre
    (when the stored image is larger than the crop the window moves, otherwise the image is
    padded by reflection).  The draw of image ``i`` in epoch ``e`` depends only on
    ``(seed, e, i)``, so it is the same with any number of loader workers and after a resume.

    Parameters
    ----------
    rotations, flips : bool
        Apply random 90-degree rotations / a random left-right flip.
    max_shift : int
        Largest shift in pixels along each axis (0 for none).
    seed : int
        Seed of the augmentation draws.
    """

    rotations: bool = True
    flips: bool = True
    max_shift: int = 4
    seed: int = 0

    def __post_init__(self):
        check_int(self.max_shift, "max_shift", "Augmentation", low=0)

    def apply(self, image: np.ndarray, crop: int | None, epoch: int, index: int) -> np.ndarray:
        """Augment one (band, y, x) image and cut it to ``crop`` pixels (None: no crop)."""
        rng = np.random.default_rng([self.seed, epoch, index])
        size = crop if crop is not None else image.shape[-1]
        shift = self.max_shift
        dy, dx = rng.integers(-shift, shift + 1, size=2) if shift else (0, 0)
        height, width = image.shape[-2:]
        top, left = (height - size) // 2 + dy, (width - size) // 2 + dx
        if top < 0 or left < 0 or top + size > height or left + size > width:
            pad = max(-top, -left, top + size - height, left + size - width, 0)
            image = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
            top, left = top + pad, left + pad
        out = image[:, top : top + size, left : left + size]
        if self.rotations:
            out = np.rot90(out, k=int(rng.integers(4)), axes=(1, 2))
        if self.flips and rng.integers(2):
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out)


class TorchLensDataset:
    """Map-style dataset for ``torch.utils.data.DataLoader``.

    Item ``k`` is ``(image, label)``: a float32 (band, y, x) numpy array in nanomaggies
    (centre-cropped to ``crop`` pixels, augmented when an :class:`Augmentation` is given)
    and an int label; the loader's default collate turns them into tensors.  The network's
    input transform (for example an asinh stretch) is applied later, on the device.
    Call :meth:`set_epoch` before each epoch so that augmentations differ between epochs.

    Parameters
    ----------
    dataset : LensDataset
        The images (:class:`clusterlens.datasets.LensDataset`, or a view of one).
    crop : int, optional
        Side of the centre crop [pixels].
    augmentation : Augmentation, optional
    """

    def __init__(self, dataset, *, crop=None, augmentation=None):
        self.dataset = dataset
        self.crop = crop
        if crop is not None:
            center_crop(np.empty((1, *dataset.image_shape[1:]), dtype=np.float32), crop)
        self.augmentation = augmentation
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, k: int):
        image, label = self.dataset[k]
        if self.augmentation is not None:
            image = self.augmentation.apply(
                image, self.crop, self.epoch, int(self.dataset.indices[k])
            )
        elif self.crop is not None:
            image = np.ascontiguousarray(center_crop(image, self.crop))
        return image, label
