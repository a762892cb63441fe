"""Accounts from the command line; today one command, the first admin:

    python -m services.api.accounts create-admin --username NAME [--display-name "Full Name"]
        [--password-file PATH] [--another]

The password is asked twice on the terminal, or read from --password-file (its first line;
for scripts and Docker secrets). It refuses when an admin exists, unless --another. There is
no default account and no default password. DATABASE_URL says which database.
"""

import argparse
import getpass
import logging
import re
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from services.api.accounts import audit
from services.api.accounts.passwords import hash_password, password_problem
from services.api.accounts.users import USERNAME_PATTERN, admin_exists, create_user, find_user
from services.common.db import TRANSIENT_DB_ERRORS, create_engine
from services.common.logs import setup_logging
from services.common.settings import BaseServiceSettings, DatabaseSettings, load_settings, redact

logger = logging.getLogger("services.api.accounts")


class AccountSettings(BaseServiceSettings, DatabaseSettings):
    pass


class RefusedError(Exception):
    """Nothing was created; the message says why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.api.accounts", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-admin", help="create an admin account (the first one)")
    create.add_argument("--username", required=True)
    create.add_argument("--display-name", help="the name shown (default: the username)")
    create.add_argument("--password-file", type=Path, help="read the password from this file's first line")
    create.add_argument("--another", action="store_true", help="create it even though an admin exists")
    return parser


def read_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text().splitlines()
        except OSError as error:
            raise RefusedError(f"cannot read {password_file}: {error.strerror}") from error
        password = lines[0] if lines else ""
    else:
        if not sys.stdin.isatty():
            raise RefusedError("no terminal to ask for the password: give --password-file")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise RefusedError("the two passwords differ")
    problem = password_problem(password)
    if problem:
        raise RefusedError(problem)
    return password


def create_admin(
    engine: sa.Engine, username: str, display_name: str | None, password: str, another: bool
) -> int:
    """Create the admin; its id. Raises RefusedError."""
    if not re.match(USERNAME_PATTERN, username):
        raise RefusedError("a username is 1-64 letters, digits and . _ @ -, starting with a letter or digit")
    password_hash = hash_password(password)
    try:
        with engine.begin() as connection:
            if admin_exists(connection) and not another:
                raise RefusedError("an admin already exists; sign in as them, or pass --another")
            if find_user(connection, username) is not None:
                raise RefusedError(f"username {username} is already taken")
            user = create_user(connection, username, display_name or username, "admin", password_hash)
            audit.record(connection, None, "user.create", "user", user.id, detail=f"{username} as admin")
    except IntegrityError as error:
        raise RefusedError(f"username {username} is already taken") from error
    return user.id


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings(AccountSettings, [])
    setup_logging("accounts", settings.log_level)
    engine = create_engine(settings)
    try:
        password = read_password(args.password_file)
        user_id = create_admin(engine, args.username, args.display_name, password, args.another)
    except RefusedError as error:
        logger.error("no admin created: %s", error)
        return 1
    except sa.exc.ProgrammingError as error:  # e.g. no users table: migrations not applied
        logger.error(
            "no admin created: %s (are the migrations applied? python -m services.common.migrations)",
            getattr(error, "orig", error),
        )
        return 1
    except TRANSIENT_DB_ERRORS as error:
        logger.error(
            "no admin created: MySQL at %s: %s", redact(settings.database_url), getattr(error, "orig", error)
        )
        return 1
    finally:
        engine.dispose()
    logger.info(
        "admin %s created (user %d); sign in with POST /auth/login or the dashboard", args.username, user_id
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
