"""The documents that comments and docstrings in src/ and conf/ cite are in the repository.

A citation is any token ending in ``.md`` in a comment or docstring (``docs/upstream.md``); it
must name a file relative to the repository root, so a bare ``upstream.md`` or ``findings.md``
(files a clone does not have) fails. A section label ``§X`` belongs to the document right before
it (``docs/upstream.md §3(c), §5.1``: both), else it is a bare label, which the code uses for
``docs/upstream.md``; either way it must appear in a heading of that document.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DOC = "docs/upstream.md"
# A path-like token ending in .md, e.g. docs/upstream.md, README.md, findings.md.
DOC_TOKEN = r"[\w./-]*\w\.md\b"
# A section label: 3, 5.2, 10.8, 3(c); trailing punctuation is not part of it.
SECTION = r"§(\d+(?:\.\d+)*(?:\([a-z]\))?)"
CITATION = re.compile(rf"(?P<doc>{DOC_TOKEN})|{SECTION}")
# What may separate a document from its labels, or one label from the next: "§3(c), §5.1 and §6".
CHAIN_GAP = re.compile(r"[\s,;\-–]*(?:and\s+)?")
HEADING = re.compile(rf"^#{{1,6}}\s+{SECTION}", re.MULTILINE)
# The comment part of a YAML line: a '#' at the start or after whitespace.
YAML_COMMENT = re.compile(r"(?:^|\s)#(.*)$")
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def python_blocks(source: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of every docstring and every run of consecutive comment lines."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                yield node.body[0].lineno, docstring
    comments = [
        (token.start[0], token.string.lstrip("#"))
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    yield from _runs(comments)


def yaml_blocks(source: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of every run of consecutive lines that carry a comment."""
    comments = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = YAML_COMMENT.search(line)
        if match:
            comments.append((number, match.group(1)))
    yield from _runs(comments)


def _runs(lines: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Join (line number, text) pairs on consecutive lines into one text per run."""
    start, texts, previous = None, [], None
    for number, text in lines:
        if previous is not None and number != previous + 1:
            yield start, " ".join(texts)
            start, texts = None, []
        start = number if start is None else start
        texts.append(text)
        previous = number
    if texts:
        yield start, " ".join(texts)


def citations(blocks: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str, str | None]]:
    """(line, document, section label or None) for every citation in the blocks."""
    for line, text in blocks:
        current, end = None, 0
        for match in CITATION.finditer(text):
            if match.group("doc"):
                current = match.group("doc")
                yield line, current, None
            else:
                if current is None or not CHAIN_GAP.fullmatch(text[end : match.start()]):
                    current = DEFAULT_DOC
                yield line, current, match.group(2)
            end = match.end()


def cited_in_repository() -> list[tuple[str, str, str | None]]:
    """(where, document, label) of every citation in src/**/*.py and conf/**/*.yml."""
    found = []
    for pattern, blocks in (("src/**/*.py", python_blocks), ("conf/**/*.yml", yaml_blocks)):
        for path in sorted(ROOT.glob(pattern)):
            source = path.read_text(encoding="utf-8")
            for line, doc, label in citations(blocks(source)):
                found.append((f"{path.relative_to(ROOT)}:{line}", doc, label))
    return found


def heading_labels(doc: Path) -> set[str]:
    """The section labels that open a heading of a markdown file."""
    return set(HEADING.findall(doc.read_text(encoding="utf-8")))


def missing_documents(found: list[tuple[str, str, str | None]]) -> list[str]:
    return sorted({f"{where}: {doc}" for where, doc, _ in found if not (ROOT / doc).is_file()})


def missing_sections(found: list[tuple[str, str, str | None]]) -> list[str]:
    labels: dict[str, set[str]] = {}
    problems = []
    for where, doc, label in found:
        if label is None or not (ROOT / doc).is_file():
            continue
        if doc not in labels:
            labels[doc] = heading_labels(ROOT / doc)
        if label not in labels[doc]:
            problems.append(f"{where}: {doc} §{label}")
    return sorted(set(problems))


@pytest.fixture(scope="module")
def found() -> list[tuple[str, str, str | None]]:
    return cited_in_repository()


def test_the_scan_finds_the_citations(found):
    sections = [label for _, doc, label in found if doc == DEFAULT_DOC and label]
    assert len(sections) > 50, f"only {len(sections)} citations of {DEFAULT_DOC} sections found"
    assert {doc for _, doc, _ in found} >= {DEFAULT_DOC, "docs/architecture.md"}


def test_cited_documents_exist(found):
    assert missing_documents(found) == []


def test_cited_sections_are_headings(found):
    assert missing_sections(found) == []


def test_old_citations_fail():
    python = (
        '"""Guide (upstream.md §3(d)), aligned as in findings.md."""\n'
        "x = 1  # see field.md §2\n"
        "# docs/upstream.md §99, §3(c)\n"
        "# (docs/architecture.md: why), and a bare §4 and §98\n"
    )
    yaml = "a: 1  # upstream.md §5.2\n# (docs/upstream.md\n# §4, §42).\n"
    found = [("py", doc, label) for _, doc, label in citations(python_blocks(python))]
    found += [("yml", doc, label) for _, doc, label in citations(yaml_blocks(yaml))]
    assert missing_documents(found) == [
        "py: field.md",
        "py: findings.md",
        "py: upstream.md",
        "yml: upstream.md",
    ]
    assert missing_sections(found) == [
        "py: docs/upstream.md §98",
        "py: docs/upstream.md §99",
        "yml: docs/upstream.md §42",
    ]


def test_docs_link_to_existing_files():
    broken = [
        f"{doc.name}: {target}"
        for doc in sorted((ROOT / "docs").glob("*.md"))
        for target in LINK.findall(doc.read_text(encoding="utf-8"))
        if not (doc.parent / target).is_file()
    ]
    assert broken == []
