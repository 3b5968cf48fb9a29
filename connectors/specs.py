"""Declarative connectors: JSON (or YAML) specs that become tools without Python.

The shape extends the motivating article's (`name`, `resource`, `method`, `query` with
`{{args.x}}`, `recurse` with `if` and `config.query`) with what a real spec needs: the
vendor (base URL, token URL, auth placement, error fields, rate-limit dialect), the records
path (JMESPath), a named pagination dialect and argument declarations, and `writes`: write
tools (method, path and body templates, the retry-safety mechanism, how the answer names the
object; run by `connectors.specwrites`). A bad spec is refused at load with the file and field
named.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import jmespath
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from connectors import pagination as p
from connectors.base import RatePolicy, Tool, Vendor
from connectors.resource import Pending, Resource
from connectors.specwrites import DeclaredWrite, Lookup, PreviewRead
from connectors.templates import check, is_domain
from connectors.writes import Mechanism, Write, one

TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,3}$")
ARG_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
ARRAY_TYPES: dict[str, Any] = {"string": list[str], "integer": list[int]}  # by `items`


class SpecError(ValueError):
    """A refused spec: the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ArgSpec(_Strict):
    type: Literal["string", "integer", "number", "boolean", "array", "object"]
    description: str = ""
    required: bool = False
    default: Any = None
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: Literal["string", "integer"] = "string"
    # `hostname`: a bare domain (`acme.example`), refused with a reason when it is a URL, an
    # email or has a path, and lowercased
    format: Literal["hostname"] | None = None

    @model_validator(mode="after")
    def _format_is_for_strings(self) -> ArgSpec:
        if self.format and self.type != "string":
            raise ValueError(f"`format: {self.format}` is for a string argument, not {self.type}")
        return self


class PaginationSpec(_Strict):
    type: Literal[
        "body_cursor",
        "next_url",
        "link_header",
        "offset",
        "page_token",
        "starting_after",
        "graphql",
        "none",
    ]
    cursor: str = ""
    param: str = ""
    has_more: str = ""
    in_body: bool = False
    url: str = ""
    done: str = ""
    rel: str = "next"
    start: str = "startAt"
    total: str = "total"
    is_last: str = "isLast"
    token: str = "nextPageToken"
    id_field: str = "id"
    page_info: str = ""
    variable: str = "after"


class PendingSpec(_Strict):
    """An answer with this status means the vendor queued the work (Clearbit's 202): the job
    waits in `waiting_vendor` and asks again after `wait_s`."""

    status: int = Field(202, ge=201, le=299)
    wait_s: float = Field(60.0, gt=0, le=86400)


class RecurseConfig(_Strict):
    query: dict[str, Any]


class RecurseSpec(_Strict):
    if_: str = Field(alias="if")
    config: RecurseConfig


class ResourceSpec(_Strict):
    name: str = ""
    vendor: str = ""
    resource: str = ""
    method: str = "list"
    description: str = ""
    http_method: Literal["GET", "POST"] = "GET"
    path: str
    query: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    args: dict[str, ArgSpec] = Field(default_factory=dict)
    records: str
    pagination: PaginationSpec | None = None
    recurse: RecurseSpec | None = None
    record_id: str = "id"
    persist: bool | None = None  # accepted for the article's shape; spools are always used
    # `empty`: a 404 is a page with no records (a lookup that found nothing), not a failure
    not_found: Literal["error", "empty"] = "error"
    pending: PendingSpec | None = None


class ResultSpec(_Strict):
    """How a write's answer names the object: its vendor id (JMESPath) and what happened."""

    id: str = Field(min_length=1)
    status: Literal["created", "updated"]


class FindSpec(_Strict):
    """A GET whose answer lists the operation's effect if it happened (`records` non-empty)."""

    path: str
    query: dict[str, Any] = Field(default_factory=dict)
    records: str = Field(min_length=1)
    id: str = "id"


class PreviewSpec(_Strict):
    """A write's dry run: GET `current` (the object the write changes; 404: it would be
    refused); with `fields` (JMESPath into the rendered body: what an update sets) its
    `object` (JMESPath into the answer) is diffed against them; without, the write adds to
    the object (a comment) and would create. `merge`: fields set key by key (metadata)."""

    current: str
    id: str = ""
    object: str = ""
    fields: str | None = None
    merge: list[str] = Field(default_factory=list)


class WriteSpec(_Strict):
    """One write tool: one request per job, made safe to resend by `mechanism`."""

    name: str
    description: str = Field(min_length=1)
    args: dict[str, ArgSpec] = Field(default_factory=dict)
    method: Literal["POST", "PUT", "PATCH", "DELETE"]
    path: str
    body: Any = None
    encoding: Literal["json", "form"] = "json"
    mechanism: Mechanism
    key_header: str = Field("", pattern=r"^([A-Za-z][A-Za-z0-9-]*)?$")
    key_error: str = ""  # the vendor's error code for a refused key (409: still executing)
    result: ResultSpec
    find: FindSpec | None = None
    preview: PreviewSpec | None = None
    destructive: bool = False
    idempotent: bool | None = None  # default: an absolute or upsert write is


class BudgetSpec(_Strict):
    """The vendor's documented per-account request budget (seeds the shared budget)."""

    limit: int = Field(ge=1)
    window_s: float = Field(gt=0)
    fixed: bool = False


class VendorSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    base_url: str = Field(pattern=r"^https?://")
    token_url: str = ""
    auth_header: str = "Authorization"
    auth_format: str = "Bearer {token}"
    error_code: str = "error"
    error_message: str = "message"
    rate_limit: str = ""
    budget: BudgetSpec | None = None


class SpecFile(_Strict):
    vendor: VendorSpec | None = None
    resources: list[ResourceSpec] = Field(default_factory=list)
    writes: list[WriteSpec] = Field(default_factory=list)


def error_classifier(code_path: str, message_path: str) -> Any:
    """A vendor's refusals (4xx other than 401/429) as VendorError with its code and text."""
    from connectors.errors import VendorError

    def classify(resp: Any) -> None:
        if resp.status_code < 400 or resp.status_code in (401, 429) or resp.status_code >= 500:
            return
        try:
            doc = resp.json()
        except ValueError:
            doc = {}
        code = p.search(code_path, doc) if isinstance(doc, dict) else None
        message = p.search(message_path, doc) if isinstance(doc, dict) else None
        raise VendorError(
            str(code or f"http_{resp.status_code}"),
            str(message or resp.text[:500] or resp.reason),
            status=resp.status_code,
        )

    return classify


def load_file(path: Path) -> tuple[Vendor | None, list[Tool]]:
    """Parse and validate one spec file; SpecError names the file and the field."""
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml  # optional: only needed for YAML specs

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the spec's fault
        raise SpecError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if (
        isinstance(raw, dict)
        and "resources" not in raw
        and "vendor" not in raw
        and "writes" not in raw
        or (isinstance(raw, dict) and isinstance(raw.get("vendor"), str))
    ):
        raw = {"resources": [raw]}  # a single resource in the article's shape
    try:
        spec = SpecFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise SpecError(f"{path}: field `{loc}`: {err['msg']}") from None
    vendor = None
    if spec.vendor:
        v = spec.vendor
        vendor = Vendor(
            name=v.name,
            base_url=v.base_url,
            token_url=v.token_url,
            classify=error_classifier(v.error_code, v.error_message),
            auth_header=v.auth_header,
            auth_format=v.auth_format,
            rate_limit=v.rate_limit,
            budget=RatePolicy(**v.budget.model_dump()) if v.budget else None,
        )
    tools = []
    for i, res in enumerate(spec.resources):
        where = f"{path}: resources[{i}]"
        tools.append(_resource(res, spec.vendor.name if spec.vendor else "", where).tool())
    for i, ws in enumerate(spec.writes):
        tools.append(_write_tool(ws, f"{path}: writes[{i}]"))
    return vendor, tools


def _resource(res: ResourceSpec, vendor: str, where: str) -> Resource:
    vendor = res.vendor or vendor
    name = res.name if "." in res.name else ""
    if not name:
        if not (vendor and res.resource):
            raise SpecError(f"{where}: give `name` (vendor.resource.action) or vendor + resource")
        name = f"{vendor}.{res.resource.replace('/', '.')}.{res.method}"
    if not TOOL_NAME.match(name):
        raise SpecError(
            f"{where}: field `name`: {name!r} is not of the form vendor.resource.action"
        )
    where = f"{where} ({name})"
    for field_name, expr in [("records", res.records), ("record_id", res.record_id)]:
        _jmes(expr, where, field_name)
    _templates([res.path, res.query, res.body], {"args"}, res.args, where, "path/query/body")
    if res.pagination and res.recurse:
        raise SpecError(f"{where}: give `pagination` or `recurse`, not both")
    dialect: p.Dialect = p.NoPages()
    if res.recurse:
        problems = check([res.recurse.if_, res.recurse.config.query], {"response", "records"})
        if problems:
            raise SpecError(f"{where}: field `recurse`: {problems[0]}")
        dialect = p.Recurse(res.recurse.if_, res.recurse.config.query)
    elif res.pagination:
        dialect = _dialect(res.pagination, where)
    return Resource(
        name=name,
        description=res.description or f"{name} (declarative spec)",
        args=_args_model(name, res.args),
        path=res.path,
        records=res.records,
        method=res.http_method,
        query=res.query,
        body=res.body,
        paginate=dialect,
        record_id=res.record_id,
        not_found_empty=res.not_found == "empty",
        pending=Pending(res.pending.status, res.pending.wait_s) if res.pending else None,
    )


def _templates(
    templates: Any, roots: set[str], args: dict[str, ArgSpec], where: str, field_name: str
) -> None:
    """Refuse a malformed placeholder, a root not in `roots`, or an undeclared `args.x`."""
    problems = check(templates, roots)
    for ref in re.findall(r"\{\{\s*args\.([A-Za-z_]\w*)", json.dumps(templates)):
        if ref not in args:
            problems.append(f"`args.{ref}` is used but not declared in `args`")
    if problems:
        raise SpecError(f"{where}: field `{field_name}`: {problems[0]}")


def _write_tool(ws: WriteSpec, where: str) -> Tool:
    """A `writes` entry as a write tool; refusals name the entry and the field."""
    if not TOOL_NAME.match(ws.name):
        raise SpecError(
            f"{where}: field `name`: {ws.name!r} is not of the form vendor.resource.action"
        )
    where = f"{where} ({ws.name})"
    roots = {"args", "op"}
    _templates([ws.path, ws.body], roots, ws.args, where, "path/body")
    _jmes(ws.result.id, where, "result.id")
    _check_mechanism(ws, where)
    lookup = None
    if ws.find:
        _templates([ws.find.path, ws.find.query], roots, ws.args, where, "find")
        _jmes(ws.find.records, where, "find.records")
        _jmes(ws.find.id, where, "find.id")
        lookup = Lookup(ws.find.path, ws.find.query, ws.find.records, ws.find.id)
    declared = DeclaredWrite(
        **ws.model_dump(include={"method", "path", "body", "encoding", "key_header", "key_error"}),
        tool=ws.name,
        id=ws.result.id,
        status=ws.result.status,
        find_spec=lookup,
        preview_spec=_preview(ws, where),
    )
    repeat_safe = ws.mechanism in (Mechanism.ABSOLUTE, Mechanism.UPSERT)
    return Tool(
        name=ws.name,
        description=ws.description,
        args=_args_model(ws.name, ws.args),
        read_only=False,
        destructive=ws.destructive,
        idempotent=repeat_safe if ws.idempotent is None else ws.idempotent,
        write=Write(
            ws.mechanism,
            one,
            declared.send,
            declared.find if ws.find else None,
            preview=declared.preview,
        ),
    )


def _preview(ws: WriteSpec, where: str) -> PreviewRead | None:
    if ws.preview is None:
        return None
    pv = ws.preview
    _templates([pv.current, pv.id], {"args", "op"}, ws.args, where, "preview")
    _jmes(pv.object, where, "preview.object")
    _jmes(pv.fields or "", where, "preview.fields")
    if pv.merge and pv.fields is None:
        raise SpecError(f"{where}: field `preview.merge` needs `preview.fields`")
    return PreviewRead(pv.current, pv.id, pv.object, pv.fields, tuple(pv.merge))


def _check_mechanism(ws: WriteSpec, where: str) -> None:
    """What each mechanism needs: a key header, a lookup; `none` takes neither."""
    if ws.mechanism is Mechanism.KEY and not ws.key_header:
        raise SpecError(f"{where}: field `key_header` is required for idempotency_key")
    if ws.mechanism is Mechanism.MARKER and ws.find is None:
        raise SpecError(f"{where}: field `find` is required for marker")
    if ws.mechanism is Mechanism.NONE and (ws.key_header or ws.find):
        raise SpecError(
            f"{where}: field `mechanism`: none takes no `key_header` or `find` "
            "(with either, declare idempotency_key or marker)"
        )
    if ws.key_error and not ws.key_header:
        raise SpecError(f"{where}: field `key_error` needs `key_header`")


def _dialect(spec: PaginationSpec, where: str) -> p.Dialect:
    for f in (
        "cursor",
        "has_more",
        "url",
        "done",
        "start",
        "total",
        "is_last",
        "token",
        "page_info",
    ):
        _jmes(getattr(spec, f), where, f"pagination.{f}")
    need = {
        "body_cursor": ("cursor", "param"),
        "next_url": ("url",),
        "graphql": ("page_info",),
    }.get(spec.type, ())
    for f in need:
        if not getattr(spec, f):
            raise SpecError(f"{where}: field `pagination.{f}` is required for {spec.type}")
    match spec.type:
        case "body_cursor":
            return p.BodyCursor(spec.cursor, spec.param, spec.has_more, spec.in_body)
        case "next_url":
            return p.NextUrl(spec.url, spec.done, spec.has_more)
        case "link_header":
            return p.LinkHeader(spec.rel)
        case "offset":
            return p.Offset(spec.param or "startAt", spec.start, spec.total, spec.is_last)
        case "page_token":
            return p.PageToken(spec.token, spec.param or "nextPageToken", spec.is_last)
        case "starting_after":
            return p.StartingAfter(
                spec.has_more or "has_more", spec.id_field, spec.param or "starting_after"
            )
        case "graphql":
            return p.GraphQLPageInfo(spec.page_info, spec.variable)
    return p.NoPages()


def _jmes(expr: str, where: str, field_name: str) -> None:
    if not expr:
        return
    try:
        jmespath.compile(expr)
    except jmespath.exceptions.JMESPathError as exc:
        raise SpecError(f"{where}: field `{field_name}`: bad JMESPath {expr!r}: {exc}") from None


def _args_model(name: str, args: dict[str, ArgSpec]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for arg, spec in args.items():
        if not re.match(r"^[A-Za-z_]\w*$", arg):
            raise SpecError(f"{name}: argument name {arg!r} is not an identifier")
        typ = _arg_type(spec)
        default = ... if spec.required else spec.default
        fields[arg] = (
            typ if spec.required else typ | None,
            Field(
                default,
                description=spec.description,
                ge=spec.minimum,
                le=spec.maximum,
                json_schema_extra={"format": spec.format} if spec.format else None,
            ),
        )
    model_name = "".join(part.title() for part in re.split(r"[._]", name)) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def _arg_type(spec: ArgSpec) -> Any:
    """The Python type an argument is validated as."""
    if spec.enum:
        return Literal[tuple(spec.enum)]
    if spec.format == "hostname":
        return Annotated[str, AfterValidator(hostname)]
    if spec.type == "array":
        return ARRAY_TYPES[spec.items]
    if spec.type == "object":
        return dict[str, str]
    return ARG_TYPES.get(spec.type, Any)


def hostname(value: str) -> str:
    """A bare domain name, lowercased (no surrounding space or final dot); a URL, an email, a
    path or an empty value is refused saying which, so the caller can fix the argument."""
    host, shown = value.strip().lower().rstrip("."), _shown(value)
    if not host:
        raise ValueError("give a domain name like acme.example; this one is empty")
    if "://" in host:
        raise ValueError(f"give the bare domain, not a URL: drop the scheme of {shown}")
    if "@" in host:
        raise ValueError(f"give a domain, not an email address ({shown}): the part after the @")
    if any(c in host for c in "/?#"):
        raise ValueError(f"give the bare domain, without a path or query: {shown}")
    if not is_domain(host):
        raise ValueError(f"{shown} is not a domain name like acme.example")
    return host


def _shown(value: str, at_most: int = 80) -> str:
    return repr(value if len(value) <= at_most else value[: at_most - 1] + "…")


def load_dir(directory: Path) -> tuple[list[Vendor], list[Tool]]:
    vendors, tools = [], []
    for path in sorted(directory.glob("*")):
        if path.suffix in (".json", ".yaml", ".yml"):
            vendor, file_tools = load_file(path)
            if vendor:
                vendors.append(vendor)
            tools += file_tools
    return vendors, tools
