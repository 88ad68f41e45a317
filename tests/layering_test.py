#!/usr/bin/env python3
"""tests/layering_test.py SOURCE_DIR - graphc's layering, checked.

DESIGN.md fixes who may include whom:
  ir/                  nothing of the project but ir/
  frontend/, passes/   only ir/ (and themselves)
  codegen/             ir/, passes/, codegen/ and the C ABI headers of runtime/rt/
  runtime/             never frontend/, passes/, driver/ or tools/; runtime/rt/ is a
                       C leaf that includes only itself, ir/graphc_random.h and
                       ir/graphc_io.h; only the executors (runtime/cpu,
                       runtime/cuda) include codegen/
  driver/              everything but tools/
  tools/               everything
The CMake libraries must link in the same direction, with no cycle. Every
forbidden #include and every backward or cyclic link is listed; the exit
code is 1 when there is one.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (folder, allowed include prefixes); the longest folder that matches decides.
RULES = {
    "ir": ["ir/"],
    "frontend": ["ir/", "frontend/"],
    "passes": ["ir/", "passes/"],
    "codegen": ["ir/", "passes/", "codegen/", "runtime/rt/"],
    "runtime": ["ir/", "runtime/"],
    "runtime/cpu": ["ir/", "runtime/", "codegen/"],
    "runtime/cuda": ["ir/", "runtime/", "codegen/"],
    "runtime/rt": ["runtime/rt/", "ir/graphc_random.h", "ir/graphc_io.h"],
    "driver": ["ir/", "frontend/", "passes/", "codegen/", "runtime/", "driver/"],
    "tools": ["ir/", "frontend/", "passes/", "codegen/", "runtime/", "driver/", "tools/"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

def rule_of(folder):
    """The rule of the longest RULES folder that `folder` is in."""
    parts = folder.split("/")
    for n in range(len(parts), 0, -1):
        key = "/".join(parts[:n])
        if key in RULES:
            return key
    return None


problems = []
files = 0
sources = []
for top in ("ir", "frontend", "passes", "codegen", "runtime", "driver", "tools"):
    for dirpath, _, names in os.walk(os.path.join(root, top)):
        rel = os.path.relpath(dirpath, root)
        for name in sorted(names):
            if name.endswith((".h", ".cpp", ".c", ".def")):
                sources.append((rel, name))
for rel, name in sorted(sources):
    folder = rule_of(rel)
    path = os.path.join(root, rel, name)
    if True:
        files += 1
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = m.group(1)
                if "/" not in target:  # a file beside it (runtime/rt's C files)
                    continue
                if not any(target.startswith(p) for p in RULES[folder]):
                    problems.append(f"{rel}/{name}:{line_no}: includes {target}, which "
                                    f"{folder}/ may not (allowed: {', '.join(RULES[folder])})")

# The libraries: graphc_X links only what its folder may include.
LIBS = {
    "graphc_ir": "ir", "graphc_frontend": "frontend", "graphc_passes": "passes",
    "graphc_codegen": "codegen", "graphc_codegen_cpu": "codegen",
    "graphc_codegen_cuda": "codegen", "graphc_rt": "runtime/rt",
    "graphc_runtime": "runtime", "graphc_runtime_cpu": "runtime/cpu",
    "graphc_runtime_cuda": "runtime/cuda", "graphc_driver": "driver", "graphc": "tools",
}
FOLDER_OF = {"graphc_ir": "ir/", "graphc_frontend": "frontend/", "graphc_passes": "passes/",
             "graphc_codegen": "codegen/", "graphc_codegen_cpu": "codegen/",
             "graphc_codegen_cuda": "codegen/", "graphc_rt": "runtime/rt/",
             "graphc_runtime": "runtime/", "graphc_runtime_cpu": "runtime/",
             "graphc_runtime_cuda": "runtime/", "graphc_driver": "driver/", "graphc": "tools/"}
with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
    cmake = f.read()
links = {}
for m in re.finditer(r"target_link_libraries\(\s*(\w+)([^)]*)\)", cmake):
    lib, rest = m.group(1), m.group(2)
    if lib in LIBS:
        links.setdefault(lib, set()).update(d for d in re.findall(r"\b(graphc\w*)", rest)
                                            if d in LIBS)
for lib, deps in sorted(links.items()):
    for dep in sorted(deps):
        allowed = RULES[LIBS[lib]]
        if not any(FOLDER_OF[dep].startswith(p) for p in allowed):
            problems.append(f"CMakeLists.txt: {lib} links {dep}, which {LIBS[lib]}/ may not use")


def cycle_from(lib, path):
    for dep in links.get(lib, ()):
        if dep in path:
            return path[path.index(dep):] + [dep]
        c = cycle_from(dep, path + [dep])
        if c:
            return c
    return None


for lib in sorted(links):
    c = cycle_from(lib, [lib])
    if c:
        problems.append("CMakeLists.txt: the libraries link in a cycle: " + " -> ".join(c))
        break

for p in problems:
    print("FAIL: " + p)
print(f"layering: {files} files and {len(links)} libraries checked, {len(problems)} problems")
print(f"{1 if not problems else 0} passed, {1 if problems else 0} failed")
sys.exit(1 if problems else 0)
