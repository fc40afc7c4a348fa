"""Make the figures shown on the tutorial pages, docs/images/tutorials/<page>-<n>.png.

Runs every ```python block of each tutorial in order, in one namespace, in a temporary
folder (as tests/test_docs.py does), and saves each matplotlib figure that a block leaves
open as the page's next PNG, small enough for the docs (``DPI``, 256-colour palette). The
reader's code is left as it is: the figures are saved here, not by the tutorials.

``PYTHONPATH=. python docs/tutorials/make_figures.py [page ...]`` (all pages: about three
minutes on 2 cores). With ``--output DIR`` each block's printed output is also written to
``DIR/<page>.txt``, to compare with the pages' "Expected output" blocks.
"""

import argparse
import contextlib
import io
import os
import re
import sys
import tempfile
from pathlib import Path

TUTORIALS = Path(__file__).resolve().parent
IMAGES = TUTORIALS.parent / "images" / "tutorials"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DPI = 80


def _save_small(fig, path):
    """Save ``fig`` at ``DPI`` as a palette PNG (the plots have few colours; a third the size)."""
    from PIL import Image

    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    rgb = Image.open(path).convert("RGB")
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def make_page_figures(page, output_dir=None):
    """Run one tutorial page's code and save its figures; return the PNG paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(parents=True, exist_ok=True)
    for stale in IMAGES.glob(f"{page.stem}-*.png"):
        stale.unlink()
    plt.close("all")
    written, printed = [], []
    namespace: dict = {"__name__": "__tutorial__"}
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        try:
            for i, code in enumerate(BLOCK.findall(page.read_text())):
                captured = io.StringIO()
                with contextlib.redirect_stdout(captured):
                    exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)  # noqa: S102
                printed.append(f"--- block {i}\n{captured.getvalue()}")
                for number in plt.get_fignums():
                    path = IMAGES / f"{page.stem}-{len(written) + 1}.png"
                    _save_small(plt.figure(number), path)
                    written.append(path)
                plt.close("all")
        finally:
            os.chdir(here)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / f"{page.stem}.txt").write_text("".join(printed))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="page names (default: every tutorial)")
    parser.add_argument("--output", help="folder for each page's printed output")
    args = parser.parse_args(argv)
    pages = [TUTORIALS / f"{name.removesuffix('.md')}.md" for name in args.pages] or sorted(
        TUTORIALS.glob("*.md")
    )
    for page in pages:
        for path in make_page_figures(page, args.output):
            print(f"{path.relative_to(TUTORIALS.parent)}  {path.stat().st_size // 1024} kB")
    total = sum(p.stat().st_size for p in IMAGES.glob("*.png"))
    print(f"docs/images/tutorials: {total // 1024} kB in all", file=sys.stderr)


if __name__ == "__main__":
    main()
