"""The house's structure: who may import whom, no circles, rooms of a readable size."""
import ast
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("digitlens", "handler", "ops", "training", "bench", "tests")
STAGES = ("errors", "primitives", "decode", "artefacts", "light", "segments", "frames", "lines", "marks", "cuts", "normalise", "locate",
          "number")
SERVERS = ("ts", "handler", "ops", "training", "bench", "tests")    # what the core must not import
MAX_CORE_LINES, MAX_HANDLER_LINES = 300, 100


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports, absolute, at any depth of the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def project_graph() -> dict[str, set[str]]:
    files = [path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py")]
    modules = {module_name(path): path for path in files}
    return {name: {imported for imported in imports_of(path) if imported in modules and imported != name}
            for name, path in modules.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports in ``graph`` (module -> modules it imports), as a path; None if none."""
    state: dict[str, int] = {}      # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (circle := visit(imported, path + [imported])):
                return circle
        state[module] = 2
        return None

    return next((circle for module in sorted(graph) if module not in state and (circle := visit(module, [module]))), None)


def test_no_circle_of_imports_anywhere():
    assert find_circle(project_graph()) is None


def test_a_circle_is_found_where_there_is_one(tmp_path):
    for name, other in (("a", "b"), ("b", "c"), ("c", "a")):
        (tmp_path / f"{name}.py").write_text(f"from {other} import something\n")
    graph = {name: {module.split(".")[0] for module in imports_of(tmp_path / f"{name}.py")} for name in "abc"}
    assert find_circle(graph) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_core_imports_no_server_tool_or_training_code():
    for path in (REPO_ROOT / "digitlens").rglob("*.py"):
        offending = sorted(name for name in imports_of(path) if name.split(".")[0] in SERVERS)
        assert not offending, f"{path.relative_to(REPO_ROOT)} imports {offending}"


def test_each_stage_of_image_preparation_imports_only_the_stages_beneath_it():
    package = REPO_ROOT / "digitlens" / "prepare"
    assert {path.stem for path in package.glob("*.py")} == {*STAGES, "__init__"}
    for position, stage in enumerate(STAGES):
        used = {name.split(".")[2] for name in imports_of(package / f"{stage}.py") if name.startswith("digitlens.prepare.")}
        assert used <= set(STAGES[:position]), f"{stage} imports {sorted(used - set(STAGES[:position]))}"


def test_the_rooms_are_of_a_readable_size():
    for path in (REPO_ROOT / "digitlens").rglob("*.py"):
        assert len(path.read_text().splitlines()) <= MAX_CORE_LINES, f"{path.relative_to(REPO_ROOT)} is too long"
    assert len((REPO_ROOT / "handler" / "digit_handler.py").read_text().splitlines()) <= MAX_HANDLER_LINES
