"""The design notes in docs/ against the code they describe, and the repository
against citations of files it does not contain."""

from pathlib import Path

from ganpu.core import Buf, CoreConfig, Error, Geometry
from ganpu.core.descriptor import descriptor_layout
from doctables import doc_table

ROOT = Path(__file__).resolve().parent.parent




def test_descriptor_fields_documented():
    rows = doc_table("descriptor.md")
    layout = descriptor_layout(Geometry())
    want = {name: [str(f.width), str(f.offset)] for name, f in layout}
    got = {name: rows[name][:2] for name in want if name in rows}
    assert got == want, "docs/descriptor.md: field table (width, offset) differs from descriptor_layout"


def test_error_codes_documented():
    rows = doc_table("descriptor.md")
    want = {e.name: str(e.value) for e in Error}
    got = {name: rows[name][0] for name in want if name in rows}
    assert got == want, "docs/descriptor.md: error table (code, value) differs from Error"


def test_memory_map_documented():
    rows = doc_table("memory-map.md")
    config = CoreConfig()
    want = {b.name: [str(b.value), str(config.depth(b))] for b in Buf}
    got = {name: rows[name][:2] for name in want if name in rows}
    assert got == want, "docs/memory-map.md: buffer table (code, depth) differs from Buf/CoreConfig"


# Files outside the repository that sources and docs must not cite: the repository
# has to stand on its own. A name that later becomes a file of the repository is fine.
OUTSIDE = ("BRIEF", "../shared", "ARCHITECTURE.md", "STYLE.md", "TOOLCHAIN.md",
           "DEVELOPERS.md")
TEXT = {".py", ".md", ".txt", ".rst", ".sh", ".toml", ".cfg", ".v", ".sv", ".tcl"}


def _scanned():
    for top in ("rtl", "docs", "scripts"):
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT)
            if path.is_file() and path.suffix in TEXT and not any(
                    part == "__pycache__" or part.endswith(".egg-info") for part in rel.parts):
                yield path
    yield ROOT / "README.md"


def _present_md():
    """Names of the markdown files of the checkout (build outputs and tools' folders
    aside)."""
    names = {p.name for p in ROOT.glob("*.md")}
    for top in ROOT.iterdir():
        if top.is_dir() and not top.name.startswith(".") and top.name != "build":
            names |= {p.name for p in top.rglob("*.md")}
    return names


def test_no_citation_outside_repository():
    present = _present_md()
    cited = [s for s in OUTSIDE if not (s.endswith(".md") and s in present)]
    offenders = []
    for path in _scanned():
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for s in cited:
                if s in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {s}")
    assert not offenders, "citations of files outside the repository:\n" + "\n".join(offenders)
