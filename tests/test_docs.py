"""The README and docs/ stay true: short README, links that resolve, commands that name real things."""
import re

import pytest

from ops.serve import REPO_ROOT

README = REPO_ROOT / "README.md"
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 200
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page) -> set[str]:
    text = page.read_text()
    headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), flags=re.M)
    return {slug(heading) for heading in headings} | set(re.findall(r'<a id="([^"]+)"></a>', text))


def test_the_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES
    quick_start = README.read_text().split("## Quick start", 1)[1]
    assert quick_start.index("make serve") < quick_start.index("make test") < quick_start.index("##")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_resolves(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: no #{anchor} in {linked.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_files_modules_and_make_targets_the_commands_name_exist(page):
    """In the commands shown (code blocks and inline code), not in the prose."""
    text = "\n".join(re.findall(r"```.*?```|`[^`\n]+`", page.read_text(), flags=re.S))
    for sample in set(re.findall(r"samples/[\w.-]+\.(?:png|jpg|jpeg)", text)):
        assert (REPO_ROOT / sample).exists(), f"{page.name}: {sample}"
    for module in set(re.findall(r"python -m ([\w.]+)", text)):
        path = REPO_ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").exists() or (path / "__main__.py").exists(), f"{page.name}: python -m {module}"
    targets = set(re.findall(r"^([\w-]+):", (REPO_ROOT / "Makefile").read_text(), flags=re.M))
    for target in set(re.findall(r"(?:^|`|&& )\s*make ([a-z][\w-]*)", text, flags=re.M)):
        assert target in targets, f"{page.name}: make {target}"
