"""POST a JSON body with a timeout; raise on anything but 2xx. The URL never goes into errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class DeliveryError(Exception):
    """A receiver refused or could not be reached; the message is safe to print."""


def post_json(url: str, body: dict[str, Any], timeout: float) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "pgproof-notify"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"unreachable: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
