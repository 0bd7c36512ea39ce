"""Every ``docs/deploy.md#anchor`` the code names (doctor's fixes, config refusals) is a heading of that page."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?:docs/deploy\.md|{DOCS})#([\w-]+)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_anchor_the_code_names_exists() -> None:
    page = (ROOT / "docs" / "deploy.md").read_text()
    anchors = {slug(m.group(2)) for m in re.finditer(r"^(#+) (.+)$", page, re.M)}
    named: dict[str, set[str]] = {}
    for folder in ("functions", "infra", "docs"):
        for path in (ROOT / folder).rglob("*.*"):
            if path.suffix in (".py", ".md"):
                for anchor in LINK.findall(path.read_text()):
                    named.setdefault(anchor, set()).add(path.name)
    named |= {m: {"deploy.md"} for m in re.findall(r"\]\(#([\w-]+)\)", page)}
    assert named, "the scan found no link"
    missing = {a: sorted(files) for a, files in named.items() if a not in anchors}
    assert not missing, missing
    assert {"2-lake-formation", "3-the-secret-and-its-key", "recover-a-stack-in-rollback_failed"} <= set(named)
