"""The docs stay true to the code: the generated tables cover every setting and every tool, and
every path, module, setting and README section the docs name exists."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from app.kernel.registry import registry
from app.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
TEXTS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *PAGES]
# variables read from the environment that are not settings: the CLI's and the client's
# (`--api-url`, `--api-key`, `accounts add`), and the old name the configuration page retires
NOT_SETTINGS = {"TOOLQUEUE_API_URL", "TOOLQUEUE_API_KEY", "TOOLQUEUE_VENDOR_TOKEN"}
RETIRED = {"TOOLQUEUE_WEBHOOK_ALLOW_NETWORKS"}
PATH = re.compile(r"(?<![\w./-])((?:app|tasks|connectors|sandbox|tests|bench|docs)/[\w./-]*)")
SUFFIXES = {".py", ".lua", ".json", ".md", ".yml", ".yaml", ".toml"}
MODULE = re.compile(r"(?<![\w./-])((?:app|tasks|connectors|sandbox)\.[a-z_][\w.]*\w)")
VARIABLE = re.compile(r"TOOLQUEUE_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)")
SNIPPET = re.compile(r'^--8<-- "README\.md:(\w+)"$', re.MULTILINE)


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_classes() -> list[type[BaseSettings]]:
    """The product's settings, and the sandbox's once it has its own class."""
    classes: list[type[BaseSettings]] = [Settings]
    if importlib.util.find_spec("sandbox.settings") is not None:
        classes.append(importlib.import_module("sandbox.settings").SandboxSettings)
    return classes


def variables(cls: type[BaseSettings]) -> list[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper() for name in cls.model_fields]


def page(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def test_the_configuration_page_lists_every_setting(hooks: ModuleType) -> None:
    rendered = hooks.render(page("configuration.md"))
    for cls in settings_classes():
        for variable in variables(cls):
            assert f"| `{variable}` |" in rendered, f"{variable} is missing from the table"


def test_the_settings_table_is_generated_from_the_class_it_is_given(hooks: ModuleType) -> None:
    class Probe(Settings):
        docs_probe_s: float = Field(2.5, ge=1, description="A field no page mentions")

    table = hooks.settings_table(Probe)
    assert "| `TOOLQUEUE_DOCS_PROBE_S` | `2.5` | A field no page mentions (≥ 1) |" in table
    assert "TOOLQUEUE_DOCS_PROBE_S" not in hooks.render(page("configuration.md"))


def test_the_tools_page_lists_every_registered_tool(hooks: ModuleType) -> None:
    rendered = hooks.render(page("tools.md"))
    generated = rendered[: rendered.index("\n## How each tool pages\n")]
    for name, tool in registry().tools.items():
        assert f"| `{name}` | {', '.join(tool.accepts)} |" in generated, name


def test_the_writes_page_lists_every_write_tool(hooks: ModuleType) -> None:
    rendered = hooks.render(page("writes.md"))
    writes = [name for name, tool in registry().tools.items() if not tool.read_only]
    assert writes, "the registry has write tools"
    for name in writes:
        accepts = ", ".join(registry().tools[name].accepts)
        assert f"| `{name}` | {accepts} |" in rendered, f"{name} is missing from writes.md"


def test_the_writes_table_says_what_each_vendor_tool_sends(hooks: ModuleType) -> None:
    """Every vendor write tool has a note (a request, unless its spec says it), and no note
    names a tool the registry does not have."""
    tools = registry().tools
    vendor_writes = {n for n, t in tools.items() if t.write is not None}
    assert set(hooks.WRITE_NOTES) == vendor_writes
    for name in vendor_writes:
        assert hooks.WRITE_NOTES[name][0] or hooks.spec_request(tools[name]), name


def test_every_marker_the_hook_replaces_is_on_a_page(hooks: ModuleType) -> None:
    text = "".join(p.read_text() for p in PAGES)
    for marker in hooks.RENDERERS:
        assert marker in text, f"no page holds {marker}"


def named_paths(text: str) -> list[str]:
    """Repository paths in a text: files by their suffix, folders by their `/` (so MCP's
    `tasks/get` is no path); a template's (`connectors/<vendor>.py`) folder."""
    paths = []
    for m in PATH.finditer(text):
        path = m.group(1).rstrip(".")
        if text[m.end() : m.end() + 1] in ("<", "{", "*"):
            paths.append(path.rsplit("/", 1)[0] + "/")
        elif path.endswith("/") or Path(path).suffix in SUFFIXES:
            paths.append(path)
    return paths


def test_every_path_the_docs_name_exists() -> None:
    missing = [
        f"{source.name}: {path}"
        for source in TEXTS
        for path in named_paths(source.read_text())
        if not (ROOT / path).exists()
    ]
    assert missing == []


def resolves(dotted: str) -> bool:
    """`app.kernel.registry` or `app.client.call_with_backoff`: a module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_module_the_docs_name_imports() -> None:
    named = {
        m.group(1)
        for source in TEXTS
        for m in MODULE.finditer(source.read_text())
        if not m.group(1).endswith(".md")
    }
    assert named, "the pattern finds the modules the docs name"
    assert sorted(n for n in named if not resolves(n)) == []


def test_every_variable_the_docs_name_is_a_setting() -> None:
    known = {v for cls in settings_classes() for v in variables(cls)}
    cli = "".join(p.read_text() for p in (ROOT / "app").rglob("*.py"))
    assert all(v in cli for v in NOT_SETTINGS), "the non-settings are read somewhere in app/"
    named = {v for source in TEXTS for v in VARIABLE.findall(source.read_text())}
    assert sorted(named - known - NOT_SETTINGS - RETIRED) == []


def test_every_readme_section_the_docs_include_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    for source in PAGES:
        for name in SNIPPET.findall(source.read_text()):
            assert f"--8<-- [start:{name}]" in readme and f"--8<-- [end:{name}]" in readme


def test_every_docs_page_the_readme_links_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]*)", readme)
    assert links and [link for link in links if not (ROOT / link).exists()] == []
