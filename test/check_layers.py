#!/usr/bin/python3
"""Checks the #include lines of src/ and include/ against doc/layers.txt:
every module is listed, no module includes a header of a higher layer, and
the modules' includes form no cycle. Prints each problem as FILE:LINE and
exits 1 when there is one.

    python3 test/check_layers.py [TOP_SRCDIR]
"""
import os
import re
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"')


def read_layers(path):
    layers = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            layer = int(line[0])
            for mod in line[1:]:
                if mod in layers:
                    raise SystemExit("%s:%d: module %s listed twice" % (path, lineno, mod))
                layers[mod] = layer
    return layers


def module_files(top):
    """{module: [(path, ...)]} for every .c in src/ and .h in include/."""
    mods = {}
    for d, ext in (("src", ".c"), ("include", ".h")):
        for name in sorted(os.listdir(os.path.join(top, d))):
            if name.endswith(ext):
                mods.setdefault(name[:-len(ext)], []).append(os.path.join(d, name))
    return mods


def edges(top, mods):
    """[(from module, to module, file, line)] for every include of a module header."""
    out = []
    for mod, files in sorted(mods.items()):
        for rel in files:
            with open(os.path.join(top, rel)) as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE_RE.match(line)
                    if m and m.group(1) in mods and m.group(1) != mod:
                        out.append((mod, m.group(1), rel, lineno))
    return out


def find_cycle(graph):
    """One cycle as a list of modules, or None."""
    color = {}
    stack = []

    def visit(n):
        color[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if color.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if color.get(m) is None:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(graph):
        if color.get(n) is None:
            c = visit(n)
            if c:
                return c
    return None


def check(top):
    layers = read_layers(os.path.join(top, "doc", "layers.txt"))
    mods = module_files(top)
    problems = []
    for mod, files in sorted(mods.items()):
        if mod not in layers:
            problems.append("%s:1: module %s is not in doc/layers.txt" % (files[0], mod))
    es = edges(top, mods)
    graph = {}
    where = {}
    for a, b, rel, lineno in es:
        graph.setdefault(a, set()).add(b)
        where.setdefault((a, b), (rel, lineno))
        if a in layers and b in layers and layers[b] > layers[a]:
            problems.append("%s:%d: %s (layer %d) includes %s.h of layer %d above it"
                            % (rel, lineno, a, layers[a], b, layers[b]))
    cyc = find_cycle(graph)
    if cyc:
        steps = ["%s:%d: %s includes %s.h" % (where[(x, y)] + (x, y)) for x, y in zip(cyc, cyc[1:])]
        problems.append("include cycle %s:\n  %s" % (" -> ".join(cyc), "\n  ".join(steps)))
    return problems, len(mods), len(es)


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems, nmods, nedges = check(top)
    for p in problems:
        print(p)
    print("%d modules, %d includes between them, %d problems" % (nmods, nedges, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
