"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

House rules: hand-written SQL through op.execute (no autogenerate), a COMMENT ON every new
table, view and column, grants to twilio_archive_reader for anything an analyst should
read, and a downgrade() that removes exactly what upgrade() created. Update the expected
schema in tests/integration/test_migrations.py in the same change.
"""

from alembic import op
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
