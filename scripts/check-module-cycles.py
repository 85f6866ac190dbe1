#!/usr/bin/env python3
"""Fails when a crate's modules form a cycle: `crate::a` used in `b` and `crate::b` used in
`a`, directly or through other modules. Test modules and comments do not count; a module's
children count as the module (`crate::a::x` is `a`), and `super::` (which stays inside one top module in this code base) is not followed.

Usage: scripts/check-module-cycles.py [crates/NAME ...]   (default: every crate)"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def top_module(src: Path, file: Path) -> str | None:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if not parts or parts in (["lib"], ["main"]):
        return None
    return parts[0]


def strip(text: str) -> str:
    # Test modules are allowed to reach anywhere; drop `#[cfg(test)] mod x { ... }` bodies.
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def edges(crate: Path) -> dict[str, set[str]]:
    src = crate / "src"
    graph: dict[str, set[str]] = {}
    for file in src.rglob("*.rs"):
        me = top_module(src, file)
        if me is None:
            continue
        text = strip(file.read_text())
        used = set(re.findall(r"\bcrate::(\w+)", text))
        # Braced imports: `use crate::{a, b::c}`.
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            used |= {p.strip().split("::")[0] for p in group.split(",") if p.strip()}
        modules = {u for u in used if (src / f"{u}.rs").exists() or (src / u / "mod.rs").exists()}
        graph.setdefault(me, set()).update(modules - {me})
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m) :] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def main() -> int:
    crates = [ROOT / a for a in sys.argv[1:]] or sorted((ROOT / "crates").iterdir())
    bad = 0
    for crate in crates:
        if not (crate / "src").is_dir():
            continue
        for c in cycles(edges(crate)):
            print(f"{crate.name}: module cycle {' -> '.join(c)}")
            bad += 1
    if not bad:
        print(f"no module cycles in {len(crates)} crates")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
