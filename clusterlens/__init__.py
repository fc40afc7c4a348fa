"""clusterlens: find galaxy-cluster-scale strong gravitational lenses in wide imaging surveys.

The library follows the method of Zhang et al. (the DESI Legacy Imaging Surveys cluster-lens
search): model a cluster's mass (an elliptical NFW halo plus one SIE per member galaxy),
simulate lensed arcs on cluster cutouts, train a lens finder on them, score a survey and run
the human-in-the-loop search.  Each stage lives in its own subpackage; see the documentation
for a map from the paper's steps to the functions that carry them out.
"""

__version__ = "0.1.0.dev0"

from clusterlens._malloc import keep_temporaries_on_heap
from clusterlens.errors import ClusterlensError, ParameterError

__all__ = ["ClusterlensError", "ParameterError", "__version__", "keep_temporaries_on_heap"]
