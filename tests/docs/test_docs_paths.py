"""Every repository path the documentation names exists, or is a file a make
target writes (GENERATED below, each with the target that produces it).

The documents are DOCS below. A path is any markdown link target and any
token in the text (prose, backticks, code blocks) whose first component is a
top-level entry of the repository or of the document's own directory, or
that names a `.md` file: `tests/fixtures/README.md`,
`bench/results/per_bundle.md`, `src/metrics.rs` in wasm-filter/README.md,
`BENCHMARKS.md`. `<placeholder>`, `*` and `...` components are wildcards and
`{a,b}` alternatives, so `loadtest/results/soak-<time>.{md,json}` is checked
as two globs. Links resolve against the document's directory, other tokens
against the repository root or the document's directory. A path that climbs
out of the repository (`../` above the root, `../shared`, the absolute path
of the directory holding the clone) always fails, and a
link's `#anchor` into a markdown file must be one of its headings.

"Exists" means tracked by git or new and not ignored (`git ls-files --cached
--others --exclude-standard`), so a document and the file it names can be
added in one change. A generated path must also be marked as generated where
it is named: its paragraph (or list item, or table row) names
`make <target>` (a target that writes it) or says "generated", "written by",
"writes", "built by", "builds" or "produced by".

Stdlib only, well under a second: `python -m pytest tests/docs -q`.
"""

import fnmatch
import os
import re
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parent.parent.parent

DOCS = [
    "README.md",
    "docs/*.md",
    "helm/README.md",
    "istio/README.md",
    "wasm-filter/README.md",
    "BENCHMARKS.md",
    "RELIABILITY.md",
    "python/reference_service/README.md",
    "loadtest/README.md",
    "tests/k8s/README.md",
]

# Paths that are not committed, glob -> the make targets that write them.
# The first matching glob counts, so the specific ones come first.
GENERATED = {
    "target/release/neuro-divergent": ("build",),
    "target/release": ("build",),
    "target/x86_64-unknown-linux-musl/release/neuro-divergent": ("static",),
    "target/wasm32-wasip1/release/*.wasm": ("wasm",),
    "target/fuzz": ("fuzz", "fuzz-smoke"),
    "target/fuzz/*": ("fuzz", "fuzz-smoke"),
    "target/criterion/*": ("bench",),
    "bench/results": ("bench", "bench-bundles"),
    "bench/results/*": ("bench", "bench-bundles"),
    "loadtest/results/loadtest-*": ("loadtest",),
    "loadtest/results/soak-*": ("soak",),
    "loadtest/results/migrate-*": ("migrate",),
    "loadtest/results/e2e-*": ("test-e2e", "test"),
    ".tools/*": ("test-k8s",),
    "tests/k8s/node_modules": ("test-k8s",),
    "tests/k8s/node_modules/*": ("test-k8s",),
    # cargo's build directory in general (any other cargo command writes there too).
    "target/*": ("build",),
}

LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A run of path characters holding a slash, or a .md file name; not glued to a
# preceding word, slash, dot, colon (URLs), ~ (home directories) or $ (variables).
TOKEN = re.compile(r"(?<![\w/.~:$-])(?:(?:\.\.?/)*[\w.*<>{},+-]+(?:/[\w.*<>{},+-]*)+|[\w.-]+\.md(?![\w.]))")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+")
SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")
OUTSIDE = f"{REPO.parent}/"  # the directory holding this clone: nothing in it is the project's


# Without git (an exported tree), the files on disk minus what .gitignore keeps out.
NOT_IN_GIT = {".git", "target", "node_modules", ".tools", "__pycache__", ".pytest_cache", "results"}


def repository_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=REPO, capture_output=True, check=True).stdout
        return [p for p in out.decode().split("\0") if p and (REPO / p).exists()]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for top, dirs, names in os.walk(REPO):
            rel = Path(top).relative_to(REPO)
            dirs[:] = [d for d in dirs if d not in NOT_IN_GIT or (d == "results" and str(rel) == "loadtest")]
            files += [(rel / n).as_posix() for n in names]
        return files


@cache
def index() -> tuple[frozenset, frozenset]:
    """(files, directories) of the repository: tracked, or new and not ignored."""
    files = repository_files()
    dirs = {str(parent) for f in files for parent in PurePosixPath(f).parents if str(parent) != "."}
    return frozenset(files), frozenset(dirs)


def doc_files() -> list[str]:
    found = []
    for pattern in DOCS:
        found += sorted(str(p.relative_to(REPO)) for p in REPO.glob(pattern))
    return found


def expand(path: str) -> list[str]:
    """`{a,b}` alternatives -> one path each; `<x>` and `...` components -> `*`."""
    m = re.search(r"\{([^{}]*)\}", path)
    if m:
        return [q for alt in m.group(1).split(",") for q in expand(path[:m.start()] + alt + path[m.end():])]
    path = re.sub(r"<[^<>/]*>", "*", path)
    path = re.sub(r"(^|/)\.\.\.(?=/|$)", r"\1*", path)
    return [path]


def normalise(base: PurePosixPath, path: str) -> str | None:
    """base/path with `.` and `..` folded; None if it climbs out of the repository."""
    parts: list[str] = []
    for part in (base / path).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def exists(path: str) -> bool:
    files, dirs = index()
    path = path.rstrip("/")
    if path in ("", "."):
        return True
    if any(c in path for c in "*?["):
        return any(fnmatch.fnmatchcase(p, path) or fnmatch.fnmatchcase(p, path + "/*") for p in files)
    return path in files or path in dirs


def generated_targets(path: str) -> tuple[str, ...] | None:
    path = path.rstrip("/")
    for pattern, targets in GENERATED.items():
        if fnmatch.fnmatchcase(path, pattern):
            return targets
    return None


@cache
def roots(directory: str) -> frozenset:
    """First path components that make a token a path: the entries of
    `directory` in the repository's file list, and at the top the roots of
    the generated paths."""
    files, _ = index()
    prefix = "" if directory == "." else f"{directory}/"
    names = {f[len(prefix):].split("/", 1)[0] for f in files if f.startswith(prefix)}
    if not prefix:
        names |= {g.split("/", 1)[0] for g in GENERATED}
    return frozenset(names)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def heading_anchors(text: str) -> frozenset:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return frozenset(slug(h) for h in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M))


@cache
def anchors(path: str) -> frozenset:
    return heading_anchors((REPO / path).read_text())


ITEM = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|\|)")


def paragraphs(text: str):
    """(first line number, text) of each blank-line separated block; in a
    list or a table each item or row is a block of its own."""
    start, block = 1, []
    for n, line in enumerate(text.splitlines() + [""], 1):
        if block and (not line.strip() or ITEM.match(line)):
            yield start, "\n".join(block)
            block = []
        if line.strip():
            if not block:
                start = n
            block.append(line)


def marked_generated(context: str, targets: tuple[str, ...]) -> bool:
    if re.search(r"\b(generated|written by|writes|built by|builds|produced by)\b", context, re.I):
        return True
    return any(re.search(rf"\bmake {re.escape(t)}\b", context) for t in targets)


def first_component(token: str) -> str:
    return re.sub(r"^(\./)+", "", token).split("/", 1)[0]


def check_text(doc: str, text: str) -> list[str]:
    """Problems of the document `doc` (a repository path) with content `text`,
    each as `doc:line: message`."""
    here = PurePosixPath(doc).parent
    root_names = roots(".")
    local_names = roots(str(here)) if str(here) != "." else frozenset()
    problems = []
    for start, para in paragraphs(text):
        for offset, line in enumerate(para.splitlines()):
            where = f"{doc}:{start + offset}"
            if "../shared" in line:
                problems.append(f"{where}: refers to ../shared, outside the repository")
            if OUTSIDE in line:
                problems.append(f"{where}: names {OUTSIDE}..., a location outside the repository on one machine")
            candidates = []  # (token, is_link, anchor)
            for m in LINK.finditer(line):
                target = m.group(1)
                if SCHEME.match(target):
                    continue  # URLs, mailto:
                path, _, anchor = target.partition("#")
                if not path:  # an anchor in this document
                    if anchor.lower() not in heading_anchors(text):
                        problems.append(f"{where}: #{anchor}: no such heading in {doc}")
                    continue
                candidates.append((path, True, anchor))
            scrubbed = URL.sub(" ", LINK.sub(" ", line)).replace("@", " ")
            for m in TOKEN.finditer(scrubbed):
                token = m.group(0).rstrip(".,;:")
                first = first_component(token)
                if first == ".." or first in root_names or first in local_names or token.endswith(".md"):
                    candidates.append((token, False, ""))
            for token, is_link, anchor in candidates:
                for path in expand(token):
                    # Links resolve against the document's directory; other tokens may be
                    # written from the repository root or from the document's directory.
                    bases = [here] if is_link or first_component(path) == ".." else [PurePosixPath("."), here]
                    resolved = [normalise(b, path) for b in bases]
                    if any(r is None for r in resolved):
                        problems.append(f"{where}: {token} points outside the repository")
                        continue
                    found = [r for r in resolved if exists(r)]
                    if found:
                        target = found[0]
                        if anchor and target.endswith(".md") and target in index()[0] \
                                and anchor.lower() not in anchors(target):
                            problems.append(f"{where}: {token}#{anchor}: {target} has no such heading")
                        continue
                    gen = [t for t in map(generated_targets, resolved) if t]
                    if not gen:
                        problems.append(f"{where}: {token} does not exist in the repository "
                                        "(nor is it listed as generated in tests/docs/test_docs_paths.py)")
                    elif not marked_generated(para, gen[0]):
                        problems.append(f"{where}: {token} is generated (by make {' / make '.join(gen[0])}) "
                                        "but the text does not say so: name the make target or say 'generated by'")
    return list(dict.fromkeys(problems))


def check_doc(doc: str) -> list[str]:
    return check_text(doc, (REPO / doc).read_text())


def test_the_documents_are_there():
    docs = doc_files()
    for must in ("README.md", "helm/README.md", "istio/README.md", "wasm-filter/README.md",
                 "BENCHMARKS.md", "RELIABILITY.md", "docs/contract.md"):
        assert must in docs, must


@pytest.mark.parametrize("doc", doc_files())
def test_every_path_named_exists_or_is_generated(doc):
    problems = check_doc(doc)
    assert not problems, f"{len(problems)} path(s) in {doc}:\n" + "\n".join(problems)


# Names from the project's own notes that mean nothing to a reader of the docs.
# (Words may wrap across lines: \s+ between them.)
STALE = {
    r"values-python\.yaml": "the chart's Python profile is helm/neuro-divergent/profiles/python.yaml",
    r"\bthe\s+design\s+document\b": "say what the requirement is",
    r"\bthe\s+lead\b": "an internal role",
    r"\bthe\s+brief\b": "an internal note",
    r"\bthis\s+machine\b": "say which: the benchmark machine (2 cores), the CI machines, your machine",
    r"\bblue[-/\s]+green\b": "the migration is a progressive canary with mirroring",
}


@pytest.mark.parametrize("doc", doc_files())
def test_no_internal_names(doc):
    text = (REPO / doc).read_text()
    problems = [f"{doc}:{text.count(chr(10), 0, m.start()) + 1}: {' '.join(m.group(0).split())!r} ({why})"
                for pattern, why in STALE.items() for m in re.finditer(pattern, text, re.I)]
    assert not problems, "\n".join(problems)


def test_generated_paths_name_make_targets():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_-]+)\s*:(?!=)", makefile, re.M))
    for pattern, producers in GENERATED.items():
        for t in producers:
            assert t in targets, f"GENERATED[{pattern!r}] names make {t}, which the Makefile does not define"


def test_the_check_can_fail():
    """Made-up paths, a path outside the repository, ../shared, a missing
    anchor and an unmarked generated file are each reported; real paths,
    globs, anchors and a marked generated file are not."""
    text = (
        "Real: `tests/fixtures/README.md`, [contract](contract.md), [up](../README.md),\n"
        "`loadtest/results/soak-<time>.{md,json}` (written by make soak), `.github/workflows/security.yml`,\n"
        "[errors](contract.md#errors), [self](#a-heading).\n"
        "\n"
        "Made up: `tests/no_such_dir/nothing.py`, [gone](../bench/nothing.md), NOTHING.md, `.ci/nothing`.\n"
        "\n"
        f"Outside: [up](../../elsewhere/x.md) and `../shared/notes.md` and {REPO.parent}/shared.\n"
        "\n"
        "Anchors: [none](contract.md#no-such-heading), [nor here](#no-heading).\n"
        "\n"
        "Unmarked: `bench/results/per_bundle.md` here.\n"
    )
    problems = check_text("docs/probe.md", text + "\n## A heading\n")
    report = "\n".join(problems)
    for want in ("docs/probe.md:5: tests/no_such_dir/nothing.py does not exist",
                 "docs/probe.md:5: ../bench/nothing.md does not exist",
                 "docs/probe.md:5: NOTHING.md does not exist",
                 "docs/probe.md:5: .ci/nothing does not exist",
                 "docs/probe.md:7: ../../elsewhere/x.md points outside the repository",
                 "docs/probe.md:7: refers to ../shared",
                 f"docs/probe.md:7: names {REPO.parent}/...",
                 "docs/probe.md:9: contract.md#no-such-heading: docs/contract.md has no such heading",
                 "docs/probe.md:9: #no-heading: no such heading in docs/probe.md",
                 "docs/probe.md:11: bench/results/per_bundle.md is generated"):
        assert want in report, f"{want!r} not in:\n{report}"
    assert not [p for p in problems if re.match(r"docs/probe.md:[123]:", p)], report
    assert len(problems) == 11, report  # ../shared/notes.md also does not exist
