"""The REST API for programs and the dashboard: students, enrollment photos, courses,
sessions, attendance queries and CSV exports (FastAPI; OpenAPI docs at /docs).

The contract it honours is docs/api-contract.md; `create_app` in `services.api.app` builds it.
"""
