"""HTML templates of the inspection app (a package so that they ship as package data)."""
