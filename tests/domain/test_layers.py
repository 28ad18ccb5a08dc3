"""The shape of the code, checked from its source: the domain speaks neither API's language, and
imports under app/ go one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in (ROOT / package.replace(".", "/")).rglob("*.py")}


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The app modules a file imports anywhere (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("app", "compat")}


def test_the_domain_imports_no_front_end():
    modules = _modules("app.domain")
    offending = {name: sorted(i for i in _imports(path, modules) if i.startswith(("app.api", "compat")))
                 for name, path in modules.items()}
    assert not {k: v for k, v in offending.items() if v}


def test_the_domain_uses_no_native_ids_nor_http_locations():
    pattern = re.compile(r"\bids\.(encode|decode|try_decode|decode_filter)\b|loc=|\(\"(body|query)\",")
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in (ROOT / "app" / "domain").rglob("*.py")
            for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_no_import_cycles_under_app():
    modules = _modules("app")
    graph = {name: {i for i in _imports(path, modules) if i in modules} for name, path in modules.items()}
    cycles = set()

    def walk(node: str, stack: list[str]) -> None:
        for dep in graph[node]:
            if dep in stack:
                cycle = stack[stack.index(dep):]
                start = cycle.index(min(cycle))
                cycles.add(" -> ".join(cycle[start:] + cycle[:start]))
            elif dep not in done:
                done.add(dep)
                walk(dep, [*stack, dep])

    for name in graph:
        done = {name}
        walk(name, [name])
    assert not cycles, sorted(cycles)


def test_every_module_imports():
    import importlib

    failures = {}
    for package in ("app", "compat"):
        for name in sorted(_modules(package)):
            if name.endswith("__main__"):
                continue
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - each failure is reported with its module
                failures[name] = repr(exc)
    assert failures == {}
