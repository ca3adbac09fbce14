"""What the REST and gRPC clients share: the default server address and `ServingError`."""
from __future__ import annotations

DEFAULT_SERVER = "http://127.0.0.1:8501"


class ServingError(Exception):
    """A request the server refused or failed: `status` is the HTTP status (REST) or gRPC code name (gRPC)."""

    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message
