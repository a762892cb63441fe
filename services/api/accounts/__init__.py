"""Accounts, roles and tokens (docs/auth-contract.md): who may call the API and what they may do.

- `passwords`: Argon2id hashing (argon2-cffi).
- `users`: the `users` table.
- `tokens`: session and API tokens (random secrets, only their SHA-256 stored) and looking
  one up for a request.
- `ratelimit`: the login rate limit.
- `audit`: the audit log of who created, changed, exported or erased what.
- `scope`: what a teacher may see (their courses' sessions, attendance and students).
- `dependencies`: the authentication middleware and the FastAPI dependencies routes declare.
- `__main__`: `python -m services.api.accounts create-admin`, the first admin.
"""
