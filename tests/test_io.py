"""clusterlens._io: the one atomic writer (temporary file, flush, rename, flush the folder)."""

from __future__ import annotations

import os
import stat

import pytest

from clusterlens import _io
from clusterlens._io import atomic_path, atomic_write_bytes, atomic_write_text


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(_io.TEMPORARY_SUFFIX))


@pytest.mark.parametrize("durable", [True, False])
def test_writes_replace_the_file_and_leave_no_temporary(tmp_path, durable):
    path = tmp_path / "sub" / "a.json"  # the folder is created
    atomic_write_text(path, "first é", durable=durable)
    assert path.read_bytes() == "first é".encode()
    atomic_write_bytes(path, b"second", durable=durable)
    assert path.read_bytes() == b"second"
    assert _leftovers(path.parent) == []


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "table.ecsv"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="writer died"), atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("writer died")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_the_temporary_is_beside_the_file_hidden_and_matches_no_reader(tmp_path):
    path = tmp_path / "c1.fits"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.exists()
        assert tmp.name.startswith(".c1.fits.") and tmp.suffix == ".part"
        assert list(tmp_path.glob("*.fits")) == []  # a reader globbing *.fits sees nothing
        tmp.write_bytes(b"x")
    assert path.read_bytes() == b"x"


def test_durable_writes_flush_the_file_and_the_folder(tmp_path, monkeypatch):
    synced = []  # for each fsync: is it a folder
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(_io.os, "fsync", spy)
    atomic_write_text(tmp_path / "a.txt", "x")
    # the file, then the folder (Windows cannot open a folder to flush it)
    assert synced == ([False, True] if os.name == "posix" else [False])
    synced.clear()
    atomic_write_text(tmp_path / "b.txt", "x", durable=False)
    assert synced == []
