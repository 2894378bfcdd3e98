"""The layering ARCHITECTURE.md describes, checked on the imports themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
REASON = "Longer than 400 lines because"

pytestmark = pytest.mark.no_db

# package prefix -> prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "app": ("schema", "resolvers", "workers"),
    "app.models": ("app.services", "app.jobs", "app.infra", "app.platforms", "app.http"),
    "app.infra": ("app.services", "app.http", "app.jobs"),
    "app.jobs": ("app.services", "app.http"),
    "app.platforms": ("app.services", "app.http"),
    "app.services": ("app.http",),
    "schema": ("resolvers", "workers", "app.http"),
    "resolvers": ("workers", "app.http"),
    "workers": ("schema", "resolvers", "app.http"),
}


# Where the layers are wired together: the process entry points, the HTTP edge (which
# serves the schema) and the schema object (which gathers every domain's resolvers).
COMPOSITION_ROOTS = ("app.cli", "app.asgi", "app.dev", "app.http", "schema.schema")
# __init__ files that import for a reason other than re-exporting.
INIT_REASONS = {
    "app/models/__init__.py": "one import registers every table on Base.metadata",
}


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("app", "schema", "resolvers", "workers"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    modules = _modules()
    assert len(modules) > 50, "the scan must see the tree"
    violations = []
    for name, path in sorted(modules.items()):
        rules = [banned for layer, banned in FORBIDDEN.items() if _within(name, layer)]
        if any(_within(name, root) for root in COMPOSITION_ROOTS):
            continue
        for imported in _imports(path):
            for banned in rules:
                hit = [b for b in banned if _within(imported, b)]
                if hit:
                    violations.append(f"{name} imports {imported}")
    assert violations == []


def test_no_module_over_400_lines_without_a_reason() -> None:
    long = []
    for top in ("app", "schema", "resolvers", "workers", "tests", "bench"):
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text()
            if text.count("\n") > MAX_LINES and REASON not in text[:2000]:
                long.append(str(path.relative_to(ROOT)))
    assert long == [], f"split these, or say at their top: '{REASON} ...'"


def test_no_reexport_only_init_files() -> None:
    for top in ("app", "schema", "resolvers", "workers", "tests"):
        for init in (ROOT / top).rglob("__init__.py"):
            tree = ast.parse(init.read_text())
            imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
            if str(init.relative_to(ROOT)) in INIT_REASONS:
                continue
            assert not imports, f"{init.relative_to(ROOT)} re-exports; import the module instead"
