"""The package's layering (docs/design.md): imports point one way, with no cycles.

Every `import birdinfer...` in the package is read from the source (module level, inside
functions and under TYPE_CHECKING alike), so a lazy import cannot slip past the rule.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "birdinfer"

# Lower layers never import higher ones. Within a layer, subpackages may import each other as
# long as no cycle forms (checked below).
LAYERS = {
    "atomic": 0,
    "config": 0,
    "errors": 0,
    "results": 0,
    "version": 0,
    "presets": 0,
    "audio": 1,
    "frontend": 1,
    "models": 2,
    "output": 2,
    "scoring": 3,
    "scorer": 4,
    "runner": 5,
    "quantize": 6,
    "kaggle": 6,
    "budget": 6,
    "demo": 6,
    "cli": 7,
    "__init__": 7,
    "__main__": 8,
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """birdinfer modules that `path` imports, by dotted name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("birdinfer")}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("birdinfer")
        ):
            found.add(node.module)
            # `from birdinfer.x import y` may import the submodule y
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def unit(module: str) -> str:
    """The layer unit of a module: its top-level subpackage or top-level module."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def test_every_unit_has_a_layer():
    assert {unit(m) for m in graph()} <= set(LAYERS)


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in graph().items():
        for target in targets:
            if unit(target) == "__init__":  # `import birdinfer` for the version, say
                upward.append(f"{module} imports the package root {target}")
            elif LAYERS[unit(target)] > LAYERS[unit(module)]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_the_core_never_imports_the_tools():
    core = {"audio", "frontend", "models", "output", "scoring", "scorer", "runner"}
    tools = {"quantize", "kaggle", "budget", "demo", "cli"}
    wrong = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if unit(module) in core and unit(target) in tools
    ]
    assert wrong == []


def test_no_cycles_between_subpackages_or_modules():
    for key in (unit, lambda m: m):
        edges: dict[str, set[str]] = defaultdict(set)
        for module, targets in graph().items():
            for target in targets:
                if key(module) != key(target):
                    edges[key(module)].add(key(target))
        cycle = _find_cycle(edges)
        assert cycle is None, " -> ".join(cycle)


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_checker_sees_a_planted_upward_import(tmp_path):
    """The rules can fail: an audio module importing the engine, which imports it back."""
    fake = tmp_path / "birdinfer"
    (fake / "audio").mkdir(parents=True)
    (fake / "runner").mkdir()
    (fake / "audio" / "decode.py").write_text("from birdinfer.runner.steps import run\n")
    (fake / "runner" / "steps.py").write_text("from birdinfer.audio.decode import x\n")
    edges = graph(fake)
    assert edges["birdinfer.audio.decode"] == {"birdinfer.runner.steps"}
    assert _find_cycle(edges) == [
        "birdinfer.audio.decode",
        "birdinfer.runner.steps",
        "birdinfer.audio.decode",
    ]
