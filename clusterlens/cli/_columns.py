"""Finding a catalog's id and position columns for the survey commands."""

from __future__ import annotations

from clusterlens.errors import ClusterlensError

__all__ = ["COMMON_NAMES", "find_column"]

#: Column names tried, in order, when the user names none.
COMMON_NAMES = {
    "id": ("cluster_id", "CLUSTER_ID", "id", "ID", "name", "NAME"),
    "ra": ("ra", "RA", "RA_BCG", "ra_bcg", "RAJ2000", "RAdeg"),
    "dec": ("dec", "DEC", "DEC_BCG", "dec_bcg", "DEJ2000", "DEdeg"),
}


def find_column(table, given: str | None, kind: str, option: str) -> str:
    """``given`` if it is a column of ``table``, else the first common name that is.

    ``option`` is the command-line option that names the column, for the message.
    """
    if given is not None:
        if given not in table.colnames:
            raise ClusterlensError(
                f"{option} {given!r} is not a column of the catalog "
                f"(columns: {', '.join(table.colnames)})."
            )
        return given
    for name in COMMON_NAMES[kind]:
        if name in table.colnames:
            return name
    raise ClusterlensError(
        f"Cannot find the catalog's {kind} column among {', '.join(COMMON_NAMES[kind])} "
        f"(columns: {', '.join(table.colnames)}); name it with {option}."
    )
