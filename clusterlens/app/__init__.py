"""The inspection app: graders grade candidates in their browsers, straight into a project.

``clusterlens inspect PROJECT --cutouts DIR`` serves it; in Python::

    from clusterlens.app import create_app, serve
    from clusterlens.survey import FitsDirectoryCutouts

    app = create_app("search.sqlite", FitsDirectoryCutouts("cutouts"))
    serve(app, port=8765)

See ``docs/inspect.md``. Built on Flask (no front-end build step).
"""

from clusterlens.app.images import VIEWS, ImageCache, band_image
from clusterlens.app.server import check_grader_name, create_app, new_token, serve
from clusterlens.app.synthetic import make_demo_project, synthetic_cutout, write_synthetic_cutouts

__all__ = [
    "VIEWS",
    "ImageCache",
    "band_image",
    "check_grader_name",
    "create_app",
    "new_token",
    "serve",
    "make_demo_project",
    "synthetic_cutout",
    "write_synthetic_cutouts",
]
