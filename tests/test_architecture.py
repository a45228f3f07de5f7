"""The package's layout holds to docs/architecture.md: read from the source
(ast), nothing imported. Layers, no import circles, imports at module top,
small modules, functions and classes, unique names."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "harness"

# Lowest first; a module may import its own layer and the ones before it.
# A module belongs to the longest prefix that names it (docs/architecture.md).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("parsers",),
    ("scenario.types", "scenario.limits"),
    ("guest",),
    ("model",),
    ("kernel",),
    ("expect",),
    ("steps",),
    ("scenario",),
    ("outputs",),
    ("display",),
    ("run",),
    ("decide", "outputs.bisect_report"),
    ("bisect", "review"),
    ("outputs.review_md", "outputs.review_mail", "outputs.review_junit", "outputs.patchwork"),
    ("commands",),
    ("cli", "__main__"),
)
# Imports from a lower layer to a higher one that are allowed, each with its
# reason in a comment on the import line (at most 4).
UPWARD_ALLOWED = 4
# Libraries heavy or optional enough to be imported where they are used.
LAZY_OK = ("matplotlib", "dask", "distributed", "scipy", "b4", "jinja2", "qemu")
MAX_MODULE, MAX_FUNCTION, MAX_CLASS = 450, 80, 300


def _name(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_name(p): p for p in sorted(PKG.rglob("*.py"))}
TREES: dict[str, ast.Module] = {m: ast.parse(p.read_text()) for m, p in MODULES.items()}


def layer_of(mod: str) -> int:
    best, layer = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for pre in prefixes:
            if (mod == pre or mod.startswith(pre + ".")) and len(pre) > best:
                best, layer = len(pre), i
    if mod == "":
        return 0                                   # harness/__init__.py: a docstring
    assert layer >= 0, f"harness.{mod} is in no layer of docs/architecture.md"
    return layer


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[bool, bool]:
    """(inside a function, under `if TYPE_CHECKING:`)."""
    infunc = typing_only = False
    q = parents.get(node)
    while q is not None:
        infunc |= isinstance(q, (ast.FunctionDef, ast.AsyncFunctionDef))
        typing_only |= isinstance(q, ast.If) and "TYPE_CHECKING" in ast.unparse(q.test)
        q = parents.get(q)
    return infunc, typing_only


def _imports_anything(mod: str) -> bool:
    """A package whose __init__ is only a docstring adds no edge."""
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(TREES[mod]))


def imports(mod: str) -> list[tuple[str, int, bool]]:
    """(imported harness module, line, typing only) for each import in mod.
    Importing a.b.c runs a/__init__ and a/b/__init__ too."""
    tree = TREES[mod]
    parents = _parents(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
            assert node.level == 0, f"harness.{mod}:{node.lineno}: relative import"
            _, typing_only = _guarded(node, parents)
            base = node.module.removeprefix("harness").lstrip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}".lstrip(".")
                target = sub if sub in MODULES else base
                parts = target.split(".")
                for k in range(1, len(parts) + 1):
                    t = ".".join(parts[:k])
                    if t in MODULES and t != mod and not mod.startswith(t + ".") and \
                            (t == target or _imports_anything(t)):
                        out.append((t, node.lineno, typing_only))
    return out


def test_top_level_holds_only_the_entry_points() -> None:
    top = {p.name for p in PKG.glob("*.py")}
    assert top == {"cli.py", "__init__.py", "__main__.py"}, sorted(top)


def test_no_import_circle() -> None:
    graph = {m: {t for t, _, typing_only in imports(m) if not typing_only} for m in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_layers_import_downward() -> None:
    upward = []
    for m in MODULES:
        lines = MODULES[m].read_text().splitlines()
        for t, line, typing_only in imports(m):
            if layer_of(t) > layer_of(m) and not typing_only:
                upward.append(f"harness.{m}:{line} imports harness.{t}")
                assert "# up:" in lines[line - 1], f"{upward[-1]}: an upward import needs '# up: why'"
    assert len(upward) <= UPWARD_ALLOWED, upward


def test_imports_are_at_module_top() -> None:
    inner = []
    for m, tree in TREES.items():
        parents = _parents(tree)
        lines = MODULES[m].read_text().splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            infunc, _ = _guarded(node, parents)
            if not infunc:
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            lazy = all(n.split(".")[0] in LAZY_OK for n in names)
            if not lazy or "#" not in lines[node.lineno - 1]:
                inner.append(f"harness.{m}:{node.lineno}: {ast.unparse(node)}")
    assert not inner, "imports inside functions (only heavy libraries, with a comment):\n" + "\n".join(inner)


def test_modules_functions_and_classes_are_small() -> None:
    big = []
    for m, tree in TREES.items():
        n = len(MODULES[m].read_text().splitlines())
        if n > MAX_MODULE:
            big.append(f"module harness.{m}: {n} lines")
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            size = (node.end_lineno or 0) - node.lineno + 1
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > MAX_FUNCTION:
                big.append(f"function harness.{m}.{node.name}: {size} lines")
            if isinstance(node, ast.ClassDef) and size > MAX_CLASS:
                big.append(f"class harness.{m}.{node.name}: {size} lines")
    assert not big, "\n".join(big)


def _deliberate(doc: str | None) -> bool:
    return bool(doc) and "on purpose" in doc


def test_module_basenames_and_class_names_are_unique() -> None:
    by_base: dict[str, list[str]] = defaultdict(list)
    by_class: dict[str, list[str]] = defaultdict(list)
    for m, tree in TREES.items():
        if MODULES[m].name != "__init__.py" and not _deliberate(ast.get_docstring(tree)):
            by_base[MODULES[m].stem].append(m)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and not _deliberate(ast.get_docstring(node)):
                by_class[node.name].append(m)
    repeated = {k: v for k, v in {**by_base, **by_class}.items() if len(v) > 1}
    assert not repeated, repeated


def test_the_checker_sees_a_circle_and_an_upward_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above can fail: a core module that imported the CLI would
    be both an upward import and a circle."""
    fake = ast.parse("from harness.cli import main\n")
    monkeypatch.setitem(TREES, "core.errors", fake)
    with pytest.raises(AssertionError, match="import circle"):
        test_no_import_circle()
    with pytest.raises(AssertionError, match="upward import needs"):
        test_layers_import_downward()


def test_tests_mirror_the_package() -> None:
    """A module's tests are found by its path: tests/<package>/ for each
    package folder (cli.py's commands are tested under tests/commands/), and
    at tests/ top only shared helpers and this test of the whole package."""
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    test_dirs = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name not in ("data", "__pycache__")}
    assert test_dirs <= folders, sorted(test_dirs - folders)
    loose = sorted(p.name for p in (ROOT / "tests").glob("test_*.py"))
    assert loose == ["test_architecture.py"], loose
