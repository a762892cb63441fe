"""Test-only helpers on the real infrastructure. Starting it (fresh databases and vhosts,
services as processes, where the faces are) lives in harness/, which bench/ shares."""

import sqlalchemy as sa


def scalar(engine: sa.Engine, sql: str, **params: object) -> object:
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()
