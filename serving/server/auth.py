"""The bearer-token check of `--auth-token-file`, one rule for both protocol adapters (REST `Authorization`
header, gRPC `authorization` metadata): `Bearer <token>`, scheme in any case, compared in constant time."""
from __future__ import annotations

import hmac


def bearer_ok(authorization, token: str) -> bool:
    """True when the `authorization` value (a header or metadata string) carries `token`."""
    if not isinstance(authorization, str):
        return False
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
