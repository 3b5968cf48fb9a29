"""A unified write becomes its vendor's own write tool when its job is created: the account
names the vendor, the tool's `Route` makes that vendor tool's arguments. The job then runs
(and is shown as) the vendor tool, with that tool's retry-safety mechanism."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.kernel.errors import InvalidInput
from app.kernel.registry import registry
from app.store import accounts
from connectors.base import Tool
from connectors.errors import VendorError


def route(tenant_id: str, tool: Tool, account_id: str, args: dict[str, Any]) -> tuple[Tool, Any]:
    """(the vendor tool, its validated arguments as JSON) for `tool` on the tenant's account
    (another tenant's account is not found, exactly like a missing one)."""
    assert tool.routes is not None
    vendor = accounts.load(account_id, tenant_id)["vendor"]
    way = tool.routes.get(vendor)
    if way is None:
        raise InvalidInput(
            f"tool {tool.name} runs on {' or '.join(tool.accepts)} accounts; "
            f"{account_id} is a {vendor} account",
            code="account_vendor_mismatch",
        )
    target = registry().tools[way.tool]
    try:
        mapped = way.args(tool.args.model_validate(args))
        return target, target.args.model_validate(mapped).model_dump(mode="json")
    except VendorError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(
            f"args: as {way.tool} arguments, {where}: {err['msg']}", code="invalid_args"
        ) from None
