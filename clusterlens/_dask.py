"""One way to get a Dask client, for every stage that spreads work over workers.

Without a scheduler address a local cluster of worker processes is started (one thread
each: the numba and torch code inside a task uses the cores itself) and closed afterwards;
with one, the running scheduler is used and left running.
"""

from __future__ import annotations

import contextlib
import logging

__all__ = ["MALLOC_ENV", "dask_client"]

#: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers, so glibc returns and
#: page-faults every large temporary array on each call (measured: mock generation 2-3x
#: slower, system time ~46% of user time).  Large thresholds keep such temporaries on the
#: heap; memory is still returned above 64 MiB of free heap.  Users of their own scheduler
#: should export the same two variables in their workers' environment.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": 16 * 2**20, "MALLOC_TRIM_THRESHOLD_": 64 * 2**20}


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
