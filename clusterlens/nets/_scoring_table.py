"""The scores table: fingerprints and manifests of resumable parts, one Parquet part per
chunk, and the final sorted table assembled from them (see :mod:`clusterlens.nets.scoring`)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from clusterlens._io import atomic_path, atomic_write_bytes
from clusterlens.nets._scoring_config import ScoringError

__all__ = [
    "assemble",
    "done_marker",
    "fingerprint",
    "part_path",
    "prepare_parts",
    "read_scores",
    "sigmoid",
    "write_part",
    "write_table",
]

MANIFEST = "manifest.json"
#: Table suffixes Scorer.score writes, and their astropy formats.
SUFFIXES = {".parquet": "parquet", ".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".fits": "fits"}


def part_path(parts: Path, chunk: int) -> Path:
    """The part of chunk number ``chunk`` in the folder ``parts``."""
    return parts / f"part-{chunk:07d}.parquet"


def write_part(path: Path, rows, logits: np.ndarray, errors: list) -> None:
    """Write one chunk's part (row, logit, error), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "row": pa.array(np.asarray(rows, dtype=np.int64)),
            "logit": pa.array(logits),
            "error": pa.array(errors, type=pa.string()),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large |z|."""
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def fingerprint(objects, model_sha256: str, config) -> str:
    """SHA-256 of what decides a run's scores: the model file, the objects (ids and
    positions), the image size, bands and chunk size, for int8 the calibration and the
    number of test-time views."""
    digest = hashlib.sha256()
    digest.update(model_sha256.encode())
    digest.update(
        json.dumps(
            {
                "kind": objects.kind,
                "n": len(objects),
                "size": config.size,
                "bands": config.bands,
                "chunk_size": config.chunk_size,
            }
        ).encode()
    )
    if config.precision == "int8":  # another arithmetic is another model; fp32/bf16/fp16
        # parts keep their earlier fingerprints (they mix, as before, within 1e-2)
        calibration = {"int8": [config.calibration, config.calibration_images]}
        digest.update(json.dumps(calibration).encode())
    if config.symmetries != 1:  # other views are other scores; 1 keeps earlier fingerprints
        digest.update(json.dumps({"symmetries": config.symmetries}).encode())
    digest.update("\x1f".join(str(i) for i in np.asarray(objects.ids).tolist()).encode())
    digest.update(np.ascontiguousarray(objects.ra, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(objects.dec, dtype=np.float64).tobytes())
    return digest.hexdigest()


def prepare_parts(
    parts: Path,
    fingerprint: str,
    n_objects: int,
    overwrite: bool,
    *,
    checkpoint,
    model_sha256,
    config,
) -> None:
    """Create ``parts`` with its manifest, or check that the one there is of this run."""
    manifest = {
        "fingerprint": fingerprint,
        "checkpoint": str(Path(checkpoint).resolve()),
        "model_sha256": model_sha256,
        "n_objects": n_objects,
        "config": asdict(config),
    }
    if parts.exists() and overwrite:
        shutil.rmtree(parts)
    if (parts / MANIFEST).is_file():
        saved = json.loads((parts / MANIFEST).read_text())
        if saved.get("fingerprint") != fingerprint:
            raise ScoringError(
                f"{str(parts)!r} holds the parts of another scoring run (another model, "
                "catalog, image size or chunk size). Delete it, pass overwrite=True "
                "(--overwrite), or choose another output."
            )
    else:
        parts.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(parts / MANIFEST, json.dumps(manifest, indent=1).encode())


def assemble(objects, parts: Path, n_chunks: int, chunk_size: int):
    """One table from exactly one part per chunk; checks that no object is missing or twice."""
    import pyarrow.parquet as pq
    from astropy.table import Table

    rows, logits, errors = [], [], []
    for chunk in range(n_chunks):
        path = part_path(parts, chunk)
        try:
            part = pq.read_table(path)
        except Exception as exc:  # a missing or damaged part
            raise ScoringError(f"The part {str(path)!r} cannot be read ({exc}); rerun.") from exc
        expected = np.arange(chunk * chunk_size, min((chunk + 1) * chunk_size, len(objects)))
        got = part.column("row").to_numpy()
        if not np.array_equal(got, expected):
            raise ScoringError(f"The part {str(path)!r} does not hold chunk {chunk}; rerun.")
        rows.append(got)
        logits.append(part.column("logit").to_numpy(zero_copy_only=False))
        errors.extend(part.column("error").to_pylist())
    rows, logit = np.concatenate(rows), np.concatenate(logits)
    if rows.size != len(objects) or np.unique(rows).size != rows.size:
        raise ScoringError("The parts do not cover every object exactly once; rerun.")
    # Decreasing score; NaN (failed objects) last; ties keep the catalog order.
    order = np.lexsort((rows, -np.nan_to_num(logit, nan=0.0), np.isnan(logit)))
    rows, logit = rows[order], logit[order]
    table = Table()
    table["id"] = np.asarray(objects.ids)[rows]
    table["ra"] = np.asarray(objects.ra, dtype=float)[rows]
    table["dec"] = np.asarray(objects.dec, dtype=float)[rows]
    table["score"] = sigmoid(logit)
    table["logit"] = logit
    table["ra"].unit = table["dec"].unit = "deg"
    if any(e is not None for e in errors):
        table["error"] = [errors[r] or "" for r in rows]
    table.meta["n_failed"] = int(np.isnan(logit).sum())
    return table


def done_marker(out: Path) -> Path:
    """Beside a scores table: the fingerprint of the scoring that wrote it, so that a rerun
    of the same scoring knows the table is its complete result."""
    return out.with_name(f".{out.name}.done.json")


def read_scores(out: Path):
    from astropy.table import Table

    if out.suffix.lower() != ".parquet":
        return Table.read(out, format=SUFFIXES[out.suffix.lower()])
    import pyarrow.parquet as pq  # astropy's parquet reader needs pandas; pyarrow does not

    from clusterlens._provenance import restore_parquet_metadata

    data = pq.read_table(out)
    table = Table()
    for name in data.column_names:
        values = data.column(name).to_numpy(zero_copy_only=False)
        table[name] = values.astype(str) if values.dtype == object else values
    if {"ra", "dec"} <= set(table.colnames):
        table["ra"].unit = table["dec"].unit = "deg"
    restore_parquet_metadata(table, data.schema.metadata)
    return table


def write_table(table, out: Path) -> None:
    from clusterlens._provenance import parquet_schema_metadata, table_for_fits

    suffix = out.suffix.lower()
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = {}
            for name in table.colnames:
                values = np.asarray(table[name])
                columns[name] = pa.array(values.tolist() if values.dtype.kind == "U" else values)
            # units and metadata as astropy's own Parquet writer stores them
            metadata = parquet_schema_metadata(table)
            pq.write_table(pa.table(columns).replace_schema_metadata(metadata), tmp)
        else:
            fits_ready = table_for_fits(table) if suffix == ".fits" else table
            fits_ready.write(tmp, format=SUFFIXES[suffix], overwrite=True)
