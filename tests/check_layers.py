#!/usr/bin/env python3
"""The layering of devwire-sim (sim/) and of the library (lib/src/), checked.

  includes  an `#include "x/y.h"` in sim/<layer>/ names a file of its own
            layer or a lower one (main > run > control > record > device >
            engine > script > model > observe > common);
  calls     from the object files (nm: T/D/B/R define, U refers): a file
            refers only to symbols its own layer or a lower one defines, and
            no files refer to each other in a circle, directly or through
            longer cycles;
  sizes     no file over 800 lines, no function over 80 (with ctags; left
            out, with a note, when there is no ctags).

Each violation prints as `FILE: message`; exit 1 if there is any.

  python3 tests/check_layers.py --build build/normal
  python3 tests/check_layers.py --source . --sim-objects DIR --lib-objects DIR
  python3 tests/check_layers.py --self-test   (it finds each kind of violation)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

LAYERS = ["main", "run", "control", "record", "device", "engine", "script", "model", "observe",
          "common"]
RANK = {name: len(LAYERS) - i for i, name in enumerate(LAYERS)}  # higher = upper
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80
SOURCE_EXT = (".c", ".h")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    """The layer of a file given relative to the source root, or None."""
    parts = rel.split("/")
    if parts[0] != "sim":
        return None
    if len(parts) == 2:
        return "main"
    return parts[1] if parts[1] in RANK else None


def sources(root, sub):
    """Source files under root/sub, relative to root, sorted."""
    found = []
    for dirpath, _, names in os.walk(os.path.join(root, sub)):
        for name in names:
            if name.endswith(SOURCE_EXT):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def check_includes(root, files, report):
    for rel in files:
        layer = layer_of(rel)
        if layer is None:
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m or "/" not in m.group(1):
                    continue
                target = m.group(1)
                folder = target.split("/")[0]
                if folder not in RANK:
                    continue
                if not os.path.exists(os.path.join(root, "sim", target)):
                    report(rel, f"line {lineno}: includes \"{target}\", which is no file")
                elif RANK[folder] > RANK[layer]:
                    report(rel, f"line {lineno}: includes \"{target}\": {layer} may not include "
                                f"the upper layer {folder}")


def objects(objdir, prefix, root):
    """{source path relative to the source root: object path} for the objects
    under objdir (CMake names them <source path under the target>.o). An
    object whose source is gone (a file moved or removed since that build)
    is left out: it is no part of the code any more."""
    found = {}
    for dirpath, _, names in os.walk(objdir):
        for name in names:
            if name.endswith(".c.o"):
                path = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(prefix, os.path.relpath(path, objdir)[:-2]))
                if os.path.exists(os.path.join(root, rel)):
                    found[rel] = path
    return found


def symbols(path):
    """(defined, referenced) global symbols of one object file."""
    out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    defined, referenced = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, name = fields[-2], fields[-1]
        if kind in ("T", "D", "B", "R", "G", "S", "C", "V", "W"):
            defined.add(name)
        elif kind == "U":
            referenced.add(name)
    return defined, referenced


def cycles(graph):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative, so that long chains do not hit the recursion limit.
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycle_path(graph, comp):
    """One cycle through the component's first node, as a list of files."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp + [start]


def check_calls(objs, report):
    """objs: {source path: object path} of one library."""
    table = {rel: symbols(path) for rel, path in sorted(objs.items())}
    owner = {}
    for rel, (defined, _) in table.items():
        for name in defined:
            owner.setdefault(name, rel)
    graph, via = {}, {}
    for rel, (_, referenced) in table.items():
        for name in sorted(referenced):
            to = owner.get(name)
            if to is None or to == rel:
                continue
            graph.setdefault(rel, set()).add(to)
            via.setdefault((rel, to), []).append(name)
    for (a, b), names in sorted(via.items()):
        la, lb = layer_of(a), layer_of(b)
        if la and lb and RANK[lb] > RANK[la]:
            report(a, f"calls up from {la} into {lb}: {b} ({', '.join(names[:4])}"
                      f"{', ...' if len(names) > 4 else ''})")
    for comp in cycles(graph):
        path = cycle_path(graph, comp)
        steps = ", ".join(f"{os.path.basename(a)} -> {os.path.basename(b)} "
                          f"({via[(a, b)][0]})" for a, b in zip(path, path[1:]))
        report(comp[0], f"circle between {len(comp)} files ({', '.join(comp)}): {steps}")


def check_sizes(root, files, report):
    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            n = sum(1 for _ in f)
        if n > MAX_FILE_LINES:
            report(rel, f"{n} lines (at most {MAX_FILE_LINES})")
    ctags = shutil.which("ctags")
    if not ctags:
        print("sim_layers: no ctags program: function lengths not checked")
        return
    out = subprocess.run([ctags, "--fields=+ne", "--c-kinds=f", "--language-force=C", "-o", "-"]
                         + files, cwd=root, check=True, capture_output=True, text=True).stdout
    ends = 0
    for line in out.splitlines():
        fields = line.split("\t")
        extra = dict(x.split(":", 1) for x in fields[3:] if ":" in x)
        if "line" not in extra or "end" not in extra:
            continue
        ends += 1
        n = int(extra["end"]) - int(extra["line"]) + 1
        if n > MAX_FUNCTION_LINES:
            report(fields[1], f"line {extra['line']}: function {fields[0]} has {n} lines "
                              f"(at most {MAX_FUNCTION_LINES})")
    if not ends:
        print("sim_layers: this ctags gives no function ends (Universal Ctags does): "
              "function lengths not checked")


def self_test():
    """The check finds what it is for: an include up, a call up, a circle,
    a long file and a long function, in a small tree made for it (objects
    need a C compiler; without one that part is left out, with a note)."""
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        def write(rel, text):
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        write("sim/model/m.c", '#include "device/d.h"\nint m(void);\nint m(void) { return d(); }\n')
        write("sim/device/d.h", "int d(void);\n")
        write("sim/device/d.c", "int d(void);\nint d(void) { return 2; }\n")
        write("sim/common/a.c", "int b(void);\nint a(void);\nint a(void) { return b(); }\n")
        write("sim/common/b.c", "int a(void);\nint b(void);\nint b(void) { return a(); }\n")
        write("sim/common/long.c", "int f(void);\nint f(void)\n{\n" + "    ;\n" * 85 + "    return 0;\n}\n"
              + "/* */\n" * 720)
        found = []
        files = sources(root, "sim")
        check_includes(root, files, lambda path, msg: found.append(f"{path}: {msg}"))
        check_sizes(root, files, lambda path, msg: found.append(f"{path}: {msg}"))
        cc = shutil.which("cc")
        if cc:
            objdir = os.path.join(root, "obj")
            for rel in files:
                if rel.endswith(".c"):
                    out = os.path.join(objdir, os.path.relpath(rel, "sim") + ".o")
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    subprocess.run([cc, "-c", "-I", os.path.join(root, "sim"), os.path.join(root, rel),
                                    "-o", out], check=True)
            check_calls(objects(objdir, "sim", root),
                        lambda path, msg: found.append(f"{path}: {msg}"))
        else:
            print("sim_layers self-test: no C compiler: calls not checked")
        want = ['sim/model/m.c: line 1: includes "device/d.h"', "sim/common/long.c: 810 lines",
                "function f has 89 lines"]
        if cc:
            want += ["sim/model/m.c: calls up from model into device", "circle between 2 files"]
        missing = [w for w in want if not any(w in f for f in found)]
        for f in found:
            print(f"  found: {f}")
        for w in missing:
            print(f"sim_layers self-test: not found: {w}")
        print(f"sim_layers self-test: {len(want) - len(missing)} of {len(want)} found")
        return 1 if missing else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default=os.path.dirname(here), help="the source tree's root")
    ap.add_argument("--build", help="a build directory (finds both object directories)")
    ap.add_argument("--sim-objects", help="object directory of devwire_sim_core")
    ap.add_argument("--lib-objects", help="object directory of devwire_obj")
    args = ap.parse_args()
    if args.build:
        args.sim_objects = args.sim_objects or os.path.join(
            args.build, "sim", "CMakeFiles", "devwire_sim_core.dir")
        args.lib_objects = args.lib_objects or os.path.join(
            args.build, "lib", "CMakeFiles", "devwire_obj.dir")
    root = os.path.abspath(args.source)

    violations = []

    def report(path, message):
        violations.append((path, message))
        print(f"{path}: {message}")

    files = sources(root, "sim") + sources(root, os.path.join("lib", "src"))
    check_includes(root, files, report)
    for objdir, prefix in ((args.sim_objects, "sim"), (args.lib_objects, "lib")):
        if not objdir:
            print(f"sim_layers: no object directory for {prefix}/: calls not checked")
            continue
        objs = objects(objdir, prefix, root)
        if not objs:
            print(f"sim_layers: no object files under {objdir} (build first)")
            return 2
        check_calls(objs, report)
    check_sizes(root, files, report)
    print(f"sim_layers: {len(violations)} violations")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
