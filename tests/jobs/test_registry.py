"""Every job kind the code enqueues has a handler in the worker's explicit registry."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from app.jobs.registry import combine
from workers.tasks import HANDLERS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.no_db


def _enqueued_kinds() -> dict[str, str]:
    """{kind: where} for each `new_job(session, KIND, ...)` call under app/, the kind
    expression evaluated in its own module (kinds are named constants)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "new_job")
                or (isinstance(node.func, ast.Name) and node.func.id == "new_job")
            )
        ]
        if not calls:
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for call in calls:
            kind = eval(compile(ast.Expression(call.args[1]), str(path), "eval"), vars(module))
            found[kind] = f"{path.relative_to(ROOT)}:{call.lineno}"
    return found


def test_every_enqueued_kind_has_a_handler() -> None:
    kinds = _enqueued_kinds()
    # The scan must see the known producers, or it proves nothing.
    assert {"ping", "embed_content", "embed_segment"} <= set(kinds)
    missing = {kind: where for kind, where in kinds.items() if kind not in HANDLERS}
    assert missing == {}, f"no handler in workers/tasks.py HANDLERS for {missing}"


def test_a_kind_declared_twice_is_refused() -> None:
    async def handler(_ctx: object) -> dict[str, object]:
        return {}

    with pytest.raises(ValueError, match="duplicate job handler for 'x'"):
        combine({"x": handler}, {"x": handler})  # type: ignore[dict-item]
