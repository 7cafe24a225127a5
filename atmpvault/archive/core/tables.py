"""The catalog's metadata and its state table (the last commit applied, the schema).

The core's record and audit tables are in record_tables.py, and workflows add their own
(their tables.py), all to this `metadata`; the Catalog (catalog.py) creates, projects
into and queries them. A command that reads only documents makes none of the others.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

state = sa.Table(
    "catalog_state",
    metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
