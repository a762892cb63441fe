"""Dashboard settings (environment variables of the same names)."""

import secrets

from pydantic import Field, SecretStr, field_validator

from services.common.settings import BaseServiceSettings, BrokerSettings

# Threads kept free for page loads: every Server-Sent Events client holds a thread for as
# long as its page is open, so live clients may take at most WEB_THREADS minus these.
RESERVED_PAGE_THREADS = 4
# A live page asks for its camera's preview at most this often (seconds): a few times a second.
MIN_PREVIEW_REFRESH_S = 0.2


class WebSettings(BaseServiceSettings, BrokerSettings):
    web_host: str = "0.0.0.0"  # noqa: S104 - a dashboard for the school's network
    web_port: int = Field(8080, ge=1, le=65535)
    # waitress: one process, this many threads (page loads + live clients).
    web_threads: int = Field(32, ge=RESERVED_PAGE_THREADS + 1, le=1000)
    # Seconds a connection has to send a whole request (headers and body), from its opening or
    # its previous response; then it is closed. Slow clients never hold a thread meanwhile.
    web_request_timeout_s: float = Field(20.0, ge=1, le=600)
    # Open connections at most (live pages, idle keep-alives, requests being read); beyond,
    # new ones wait in the listen backlog.
    web_connection_limit: int = Field(1000, ge=10, le=100_000)
    web_api_url: str = Field("http://127.0.0.1:8000", pattern=r"^https?://", description="the REST API")
    # Seconds; uploads of several photos are analysed by the API before it answers.
    web_api_timeout_s: float = Field(60.0, gt=0, le=600)
    # Signs the session cookie (the signed-in person's API token, flash messages, form tokens).
    # The default is random per process: fine with one process, but a restart signs everyone
    # out and forms open across it must be resubmitted.
    web_secret_key: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    # The session cookie is sent over HTTPS only: set it when the dashboard is behind TLS
    # (a reverse proxy), or browsers will never send it back over plain HTTP and nobody can sign in.
    web_cookie_secure: bool = False
    # Recent recognitions kept and shown per camera on the live page.
    web_feed_size: int = Field(20, ge=1, le=500)
    # Events waiting for one slow live client; beyond, its oldest are dropped and it resyncs.
    web_client_queue_size: int = Field(200, ge=10, le=10_000)
    # Seconds between keep-alive comments on idle live streams: how fast a closed tab frees its thread.
    web_sse_keepalive_s: float = Field(15.0, gt=0, le=300)
    # Seconds between two requests of a live page for its camera's preview (the latest frame
    # with face boxes and names, from the recognizers); 0: no preview.
    web_preview_refresh_s: float = Field(0.5, ge=0, le=60)
    web_max_upload_mb: int = Field(64, ge=1, le=1024)

    @field_validator("web_preview_refresh_s")
    @classmethod
    def _a_few_times_a_second_at_most(cls, value: float) -> float:
        if 0 < value < MIN_PREVIEW_REFRESH_S:
            raise ValueError(f"must be 0 (no preview) or at least {MIN_PREVIEW_REFRESH_S} s")
        return value

    @property
    def max_live_clients(self) -> int:
        return self.web_threads - RESERVED_PAGE_THREADS
