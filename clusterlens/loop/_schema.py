"""SQLite schema of a search project and its migrations (private).

``PRAGMA user_version`` holds the schema version. ``MIGRATIONS[v]`` takes a database from
version ``v - 1`` to ``v``; version 0 is an empty file. Append, never edit, a migration.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    ra REAL, dec REAL, z REAL, m500 REAL,
    extra TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pool' CHECK (status IN ('pool', 'positive', 'negative')),
    added_iteration INTEGER
);
CREATE INDEX objects_status ON objects (status);
CREATE TABLE iterations (
    number INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('open', 'applied')),
    model_path TEXT,
    strategy TEXT NOT NULL,
    k INTEGER,
    threshold REAL NOT NULL,
    n_scored INTEGER NOT NULL,
    n_selected INTEGER NOT NULL,
    purity REAL,
    completeness REAL,
    created_at REAL NOT NULL,
    applied_at REAL,
    lowest_new_score REAL,
    n_new INTEGER,
    n_new_negatives INTEGER
);
CREATE TABLE scores (
    iteration INTEGER NOT NULL REFERENCES iterations (number),
    object_id TEXT NOT NULL REFERENCES objects (id),
    score REAL NOT NULL,
    uncertainty REAL,
    PRIMARY KEY (iteration, object_id)
) WITHOUT ROWID;
CREATE TABLE selections (
    iteration INTEGER NOT NULL REFERENCES iterations (number),
    object_id TEXT NOT NULL REFERENCES objects (id),
    rank INTEGER NOT NULL,
    PRIMARY KEY (iteration, object_id)
) WITHOUT ROWID;
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    grader TEXT NOT NULL,
    is_lens INTEGER NOT NULL CHECK (is_lens IN (0, 1)),
    grade TEXT CHECK (grade IN ('A', 'B', 'C')),
    arc_points TEXT,
    decided_at REAL NOT NULL,
    UNIQUE (object_id, iteration, grader),
    FOREIGN KEY (iteration, object_id) REFERENCES selections (iteration, object_id)
);
CREATE INDEX decisions_iteration ON decisions (iteration);
"""

# Version 2: where each grader stands in each iteration's queue (the inspection app resumes
# there after a reload or a restart).
_V2 = """
CREATE TABLE grader_positions (
    grader TEXT NOT NULL,
    iteration INTEGER NOT NULL REFERENCES iterations (number),
    object_id TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (grader, iteration),
    FOREIGN KEY (iteration, object_id) REFERENCES selections (iteration, object_id)
) WITHOUT ROWID;
"""

# Version 3: the BALD strategy's ``mix`` (fraction of k taken by top mean score) of each
# iteration; NULL for other strategies and for iterations recorded before version 3.
_V3 = """
ALTER TABLE iterations ADD COLUMN mix REAL CHECK (mix IS NULL OR (mix >= 0 AND mix <= 1));
"""

# Version 4: a free-text comment and flags (comma-separated, from decisions.DECISION_FLAGS)
# per decision, and the decisions a newer one replaced (newest last), so that an undo restores
# the decision it replaced instead of leaving the object undecided. Older rows get no comment
# and no flags.
_V4 = """
ALTER TABLE decisions ADD COLUMN comment TEXT NOT NULL DEFAULT '' CHECK (length(comment) <= 500);
ALTER TABLE decisions ADD COLUMN flags TEXT NOT NULL DEFAULT '';
CREATE TABLE replaced_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    grader TEXT NOT NULL,
    is_lens INTEGER NOT NULL CHECK (is_lens IN (0, 1)),
    grade TEXT CHECK (grade IN ('A', 'B', 'C')),
    arc_points TEXT,
    decided_at REAL NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    flags TEXT NOT NULL DEFAULT '',
    replaced_at REAL NOT NULL
);
CREATE INDEX replaced_decisions_key ON replaced_decisions (object_id, iteration, grader);
"""

#: ``MIGRATIONS[v]`` upgrades version ``v - 1`` to ``v``.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4}
SCHEMA_VERSION = max(MIGRATIONS)
