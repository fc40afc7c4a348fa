"""One way to get a Dask client, for every stage that spreads work over workers.

Without a scheduler address a local cluster of worker processes is started (one thread
each: the numba and torch code inside a task uses the cores itself) and closed afterwards;
with one, the running scheduler is used and left running.
"""

from __future__ import annotations

import contextlib
import logging

# Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers; they get clusterlens' own
# settings instead (clusterlens._malloc). Users of their own scheduler should export the same two
# variables in their workers' environment.
from clusterlens._malloc import MALLOC_ENV

__all__ = ["MALLOC_ENV", "dask_client"]


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A ``distributed.Client`` on a new local cluster (``workers`` processes, default 2) or
    on the running scheduler at the address ``scheduler``; closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        env.update(MALLOC_ENV)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            cluster = LocalCluster(
                n_workers=workers or 2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # never fight over port 8787
                silence_logs=logging.ERROR,
            )
    client = Client(cluster if cluster is not None else scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
