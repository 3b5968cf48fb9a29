"""What every API command of the CLI shares: the client from --api-url/--api-key, and JSON
output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.client import Client


def client(args: argparse.Namespace) -> Client:
    from app.client import Client  # here: commands that need no API start without requests

    if not args.api_key:
        sys.exit("error: set TOOLQUEUE_API_KEY or pass --api-key (from `toolqueue tenants create`)")
    return Client(args.api_url, args.api_key)


def show(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
