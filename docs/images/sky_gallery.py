"""Make docs/images/sky-gallery.png: synthetic-sky positives (top row) and hard negatives
(bottom row), 223-pixel crops, Legacy Surveys colours.  ``PYTHONPATH=. python
docs/images/sky_gallery.py`` (about a minute on 2 cores)."""

from pathlib import Path

import numpy as np

from clusterlens.errors import ClusterlensError
from clusterlens.mock import MockConfig, MockLensSimulator
from clusterlens.mock.simulator import LensRejected
from clusterlens.mock.sky import SyntheticSky
from clusterlens.survey.rgb import gallery

OUT = Path(__file__).with_name("sky-gallery.png")


def main(n=4, seed=2026):
    config = MockConfig()
    sky, sim = SyntheticSky(config), MockLensSimulator(config)
    rng = np.random.default_rng(seed)
    images, ids = [], []
    while len(images) < n:  # positives
        scene = sky.draw(rng, "lens")
        try:
            result = sim.simulate(scene, rng)
        except (LensRejected, ClusterlensError):
            continue
        kinds = scene.sky_params["sky_confusers"] or "-"
        images.append(result.image)
        ids.append(f'lens  {result.params["einstein_radius"]:.0f}"  {kinds}')
    while len(images) < 2 * n:  # hard negatives
        scene = sky.draw(rng, "non-lens")
        if not scene.sky_params["sky_hard_negative"]:
            continue
        images.append(sim.crop_cutout(scene.image))
        ids.append(f"hard neg.  {scene.sky_params['sky_confusers']}")
    gallery(images, ids, ncols=n, panel_size=1.9, path=OUT)
    from PIL import Image

    # a 256-colour palette keeps the noisy panels under 300 kB
    rgb = Image.open(OUT).convert("RGB")
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        OUT, optimize=True
    )
    print(OUT, OUT.stat().st_size // 1024, "kB")


if __name__ == "__main__":
    main()
