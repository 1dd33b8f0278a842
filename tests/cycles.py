#!/usr/bin/python3
"""The dependency graph of src/ has no cycle (issue 21): read from the
object files' symbols (nm), a file depends on another when it uses a symbol
the other defines. No two files, and no two folders (layers), may depend on
each other, directly or around a longer circle. Prints each circle found,
with a symbol of each of its steps, and exits 1; else prints the layers in
order, lowest first.

    cycles.py OBJECT-FILE...
the library's object files (ctest passes $<TARGET_OBJECTS:jobcache_objects>),
named by their path from src/.
"""
import os
import subprocess
import sys
from collections import defaultdict


def symbols(obj):
    out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRVWCG":
            defined.add(parts[2])
    return defined, used


def sccs(nodes, edges):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def main():
    objs = {}
    # ctest passes $<TARGET_OBJECTS:...> as one argument, joined by ';'.
    for path in [p for arg in sys.argv[1:] for p in arg.split(";") if p]:
        rel = path[path.rfind("/src/") + 1:] if "/src/" in path else os.path.basename(path)
        for suffix in (".o", ".obj"):
            if rel.endswith(suffix):
                rel = rel[: -len(suffix)]
        objs[rel] = path
    if not objs:
        raise SystemExit("cycles: no object files given")
    defs, uses = {}, {}
    owner = {}
    for name, path in objs.items():
        d, u = symbols(path)
        defs[name], uses[name] = d, u
        for s in d:
            owner[s] = name
    edges = defaultdict(set)
    why = {}
    for a in objs:
        for s in sorted(uses[a]):
            b = owner.get(s)
            if b and b != a:
                edges[a].add(b)
                why.setdefault((a, b), s)
    bad = 0
    for comp in sccs(sorted(objs), edges):
        if len(comp) > 1:
            bad = 1
            steps = ["%s -> %s (%s)" % (a, b, why[(a, b)]) for a in comp for b in sorted(edges[a]) if b in comp]
            print("cycles: files that depend on each other: %s\n    %s" % (", ".join(comp), "\n    ".join(steps)))
    folder = lambda f: os.path.dirname(f)
    fedges = defaultdict(set)
    fwhy = {}
    for a in objs:
        for b in edges[a]:
            if folder(a) != folder(b):
                fedges[folder(a)].add(folder(b))
                fwhy.setdefault((folder(a), folder(b)), (a, b, why[(a, b)]))
    folders = sorted({folder(f) for f in objs})
    comps = sccs(folders, fedges)
    for comp in comps:
        if len(comp) > 1:
            bad = 1
            steps = ["%s -> %s (%s uses %s of %s)" % (a, b, fwhy[(a, b)][0], fwhy[(a, b)][2], fwhy[(a, b)][1])
                     for a in comp for b in sorted(fedges[a]) if b in comp]
            print("cycles: folders that depend on each other: %s\n    %s" % (", ".join(comp), "\n    ".join(steps)))
    if bad:
        sys.exit(1)
    # Tarjan returns components in reverse topological order: dependencies first.
    print("cycles: none among %d files in %d folders; the folders from the lowest: %s"
          % (len(objs), len(folders), " < ".join(c[0] for c in comps)))


if __name__ == "__main__":
    main()
