"""The API's SQL beyond the shared modules: plain SQL on SQLAlchemy Core connections."""
