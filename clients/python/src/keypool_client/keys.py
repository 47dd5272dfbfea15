"""Key ids, computed as keypool computes them, so a caller holding a secret can name its key."""

from __future__ import annotations

import hashlib


def key_id_for(api_key: str) -> str:
    """keypool's id for a secret: `k_` and the first 24 hex digits of its SHA-256 (the secret never leaves here)."""
    return "k_" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:24]
