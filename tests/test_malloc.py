"""clusterlens.keep_temporaries_on_heap: glibc's thresholds raised for numpy temporaries."""

import os
import subprocess
import sys

import pytest

import clusterlens
from clusterlens._malloc import MALLOC_ENV

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's mallopt thresholds"
)

_CHILD = """
import ctypes, ctypes.util, resource
import numpy as np
import clusterlens

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallopt(-1, 65536)  # Dask's trim threshold: glibc maps every large block afresh

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        a = np.ones(2**18)  # 2 MiB, every page written
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

f0 = faults()
ok = clusterlens.keep_temporaries_on_heap()
faults()
print(ok, f0, faults())
"""


def _clean_env():
    return {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}


def test_large_temporaries_stop_page_faulting():
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=_clean_env(), capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    ok, before, after = out[0] == "True", int(out[1]), int(out[2])
    assert ok
    # 40 fresh 2 MiB maps are 40 x 512 page faults; reused heap memory takes none
    assert before > 40 * 400
    assert after < before / 20


def test_a_value_set_in_the_environment_is_kept(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    calls = []

    class FakeLibc:
        def __init__(self, _path):
            def mallopt(option, value):
                calls.append((option, value))
                return 1

            self.mallopt = mallopt

    monkeypatch.setattr("ctypes.CDLL", FakeLibc)
    assert clusterlens.keep_temporaries_on_heap()
    assert calls == []
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert clusterlens.keep_temporaries_on_heap()
    assert calls == [(-3, MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"])]


def test_without_glibc_it_says_so(monkeypatch):
    def no_libc(_path):
        raise OSError("no C library")

    monkeypatch.setattr("ctypes.CDLL", no_libc)
    assert clusterlens.keep_temporaries_on_heap() is False
