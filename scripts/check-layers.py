#!/usr/bin/env python3
"""Checks the import layers of the Rust crates (docs/ARCHITECTURE.md,
"Invariants"): each top-level module of a crate may use only the modules on
floors below its own, so there is no import cycle. Unit tests (a file's code from its first
`#[cfg(test)]` on, and `tests.rs` files) may use any module, as integration
tests do: they assemble a bundle and run the pipeline to test a loader.

    scripts/check-layers.py          # exit 1 and say which arrow breaks a rule
    scripts/check-layers.py --graph  # print every arrow
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Floors, bottom up: a module uses only modules on lower floors (or its own
# submodules). Modules on one floor do not use each other.
LAYERS: dict[str, list[list[str]]] = {
    "inference/forecast/src": [
        ["error", "dates", "scaling"],
        ["contract"],
        ["intervals", "spec", "tensors"],
        ["forecaster"],
        ["nn"],
        ["models"],
        ["bundle"],
        ["pipeline", "profile"],
    ],
    "inference/server/src": [
        ["metrics"],
        ["config", "cache"],
        ["http"],
        ["main"],
    ],
    "wasm-filter/src": [
        ["backend"],
        ["breaker", "compare"],
        ["config"],
        ["shadow", "split", "routing"],
        ["metrics"],
        ["capture", "host"],
        ["plugin"],
        ["filter", "mirror"],
        ["http", "root"],
    ],
}

USE = re.compile(r"\b(?:crate|super)::([a-z_][a-z0-9_]*)")
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;")


def test_files(src: Path) -> set[Path]:
    """Files of modules declared `#[cfg(test)] mod x;` (and their children)."""
    out: set[Path] = set()
    for f in src.rglob("*.rs"):
        base = f.parent if f.name in ("mod.rs", "lib.rs") else f.with_suffix("")
        for name in TEST_MOD.findall(f.read_text()):
            out.add(base / f"{name}.rs")
            out.update((base / name).rglob("*.rs"))
            out.add(base / name / "mod.rs")
    return out


def modules(src: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        top = rel.parts[0].removesuffix(".rs")
        if top == "lib":
            continue
        out.setdefault(top, []).append(f)
    return out


def arrows(src: Path) -> set[tuple[str, str]]:
    tests = test_files(src)
    mods = {m: fs for m, fs in modules(src).items() if not set(fs) <= tests}
    found = set()
    for name, files in mods.items():
        for f in files:
            if f in tests or f.name == "tests.rs":
                continue
            depth = len(f.relative_to(src).parts)
            text = f.read_text().split("#[cfg(test)]", 1)[0]
            for line in text.splitlines():
                code = line.split("//", 1)[0]
                for m in USE.finditer(code):
                    target = m.group(1)
                    # `super::x` from a file directly under src/ (or a mod.rs
                    # one level down) names a sibling top-level module.
                    if m.group(0).startswith("super::") and not (
                        depth == 1 or (depth == 2 and f.name == "mod.rs")
                    ):
                        continue
                    if target in mods and target != name:
                        found.add((name, target))
    return found


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    out, seen = [], set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cyc = path[path.index(nxt):] + [nxt]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    out.append(cyc)
            else:
                walk(nxt, path + [nxt])

    for n in sorted(graph):
        walk(n, [n])
    return out


def main() -> int:
    bad = []
    for rel, layers in LAYERS.items():
        src = ROOT / rel
        edges = arrows(src)
        if "--graph" in sys.argv:
            for a, b in sorted(edges):
                print(f"{rel}: {a} -> {b}")
        for cyc in cycles(edges):
            bad.append(f"{rel}: import cycle {' -> '.join(cyc)}")
        if not layers:
            continue
        floor = {m: i for i, names in enumerate(layers) for m in names}
        tests = test_files(src)
        for m, fs in modules(src).items():
            if set(fs) <= tests:
                continue
            if m not in floor:
                bad.append(f"{rel}: module {m} is on no floor of scripts/check-layers.py")
        for a, b in sorted(edges):
            if a in floor and b in floor and floor[b] >= floor[a]:
                bad.append(f"{rel}: {a} uses {b}, which is not on a lower floor")
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
