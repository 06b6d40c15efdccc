"""The Arduino build of a sketch, emulated for tests/test_arduino_library.py.

What the Arduino builder (arduino-cli, the IDEs) does, as its sketch build process and
library specification describe it:

- the sketch's .ino files are concatenated (the one named after the folder first, the
  others in alphabetical order) into <Sketch>.ino.cpp with `#include <Arduino.h>` at the
  top, prototypes for the sketch's functions (those not in a namespace, class or struct
  and not declared already, with `static` kept) inserted before the first function
  definition, found on the preprocessed text as ctags finds them, and `#line`
  directives that point back into the .ino files; the sketch's other .c/.cpp/.S files
  compile as they are;
- libraries are found from the sketch's #include lines: a missing header is looked up
  among the headers at the top of each installed library's src/, and that library's
  src/ goes on the include path, until the sketch preprocesses;
- each library compiles every .c/.cpp/.S file under src/, recursively; its objects are
  linked directly (dot_a_linkage=false), the core's objects go into core.a;
- the link uses --gc-sections.

Everything else (the board's flags, the core) comes from the caller. Not emulated:
library discovery inside library sources (TflmTrain's is checked with -MG instead),
precompiled libraries, build caches of the IDE (ours: cached_objects).
"""

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

SOURCE_SUFFIXES = (".c", ".cpp", ".S")
_MISSING = re.compile(r"fatal error: ([^:\s]+): No such file or directory")
_LINEMARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"')
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|[A-Za-z_]\w*|\d[\w.]*|::|->|\S')
_NOT_FUNCTIONS = {"if", "for", "while", "switch", "return", "sizeof", "alignof", "decltype", "catch",
                  "static_assert", "alignas"}


def run(cmd, cwd=None, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"$ {' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}")
    return proc


def sources(folder):
    """Every source file the builder compiles under `folder`, recursively, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES)


def compile_command(board, source, obj, include_dirs, warnings):
    if source.suffix == ".c":
        cmd = [board.cc, *board.cflags]
    elif source.suffix == ".S":
        cmd = [board.cc, "-x", "assembler-with-cpp", *board.sflags]
    else:
        cmd = [board.cxx, *board.cxxflags]
    cmd += warnings + [f"-I{d}" for d in include_dirs] + ["-c", str(source), "-o", str(obj)]
    return cmd


def compile_all(board, files, out_dir, include_dirs, warnings, jobs):
    """Compiles `files` ({source: object name}) in a thread pool; returns {source: stderr}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item):
        source, name = item
        proc = run(compile_command(board, source, out_dir / name, include_dirs, warnings))
        return source, proc.stderr

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return dict(pool.map(one, files.items()))


def object_names(root, files):
    """Unique object file names for sources under root (path with / made _)."""
    return {f: str(f.relative_to(root)).replace(os.sep, "__") + ".o" for f in files}


def tree_digest(*parts, suffixes=None):
    """A digest of strings and of the contents of files and folders (recursively; only
    files with one of `suffixes` in folders, when given)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path) and part.is_dir():
            for f in sorted(p for p in part.rglob("*") if p.is_file() and (not suffixes or p.suffix in suffixes)):
                h.update(str(f.relative_to(part)).encode() + b"\0" + f.read_bytes() + b"\0")
        elif isinstance(part, Path):
            h.update(part.read_bytes())
        else:
            h.update(str(part).encode() + b"\0")
    return h.hexdigest()[:20]


def build_library(board, lib_src, include_dirs, cache_root, jobs, warnings=("-w",)):
    """Objects of every source under lib_src, compiled once per (board flags, compiler,
    library content, core headers) and kept under cache_root. Returns (objects,
    {source relative to lib_src: the compiler's messages}), also when cached."""
    files = sources(lib_src)
    headers = tree_digest(*[Path(d) for d in include_dirs if Path(d) != Path(lib_src)], suffixes={".h"})
    key = tree_digest(board.name, *board.cflags, *board.cxxflags, *warnings, board.compiler_version,
                      Path(lib_src), headers)
    prefix = f"{Path(lib_src).parent.name}-{board.name}-"
    out = Path(cache_root) / (prefix + key)
    names = object_names(Path(lib_src), files)
    done = out / "compiler_output.json"
    if done.is_file():
        return [out / n for n in names.values()], json.loads(done.read_text())
    for stale in Path(cache_root).glob(prefix + "*"):  # other versions of this library and board
        shutil.rmtree(stale, ignore_errors=True)
    # Compiled in a private folder, then renamed into place: another test run sharing the
    # cache never sees half a library.
    staging = Path(cache_root) / f".{out.name}.{os.getpid()}"
    logs = compile_all(board, names, staging, include_dirs, list(warnings), jobs)
    logs = {str(f.relative_to(lib_src)): text for f, text in logs.items()}
    (staging / done.name).write_text(json.dumps(logs, indent=1))
    try:
        staging.rename(out)
    except OSError:  # another run finished first: use its objects
        shutil.rmtree(staging, ignore_errors=True)
    return [out / n for n in names.values()], logs


# ---- sketch preprocessing ------------------------------------------------------------

def merged_sketch(sketch_dir):
    """[(file, line number, text)] of the sketch's .ino files in the builder's order."""
    sketch_dir = Path(sketch_dir)
    main = sketch_dir / f"{sketch_dir.name}.ino"
    others = sorted(p for p in sketch_dir.glob("*.ino") if p != main)
    lines = []
    for f in [main, *others]:
        lines += [(f, i + 1, text) for i, text in enumerate(f.read_text(encoding="utf-8").split("\n"))]
    return lines


def _render(lines, insert_at=None, prototypes=()):
    out = ["#include <Arduino.h>"]
    current = None
    for index, (f, n, text) in enumerate(lines):
        if index == insert_at and prototypes:
            for pf, pn, proto in prototypes:
                out += [f'#line {pn} "{pf}"', proto]
            current = None
        if current != f or index == insert_at:
            out.append(f'#line {n} "{f}"')
            current = f
        out.append(text)
    return "\n".join(out) + "\n"


def _preprocessed_ino_lines(text, board, include_dirs, work):
    """The preprocessed sketch, only the lines that come from .ino files: [(file, line, text)]."""
    src = work / "discovery.ino.cpp"
    src.write_text(text, encoding="utf-8")
    proc = run([board.cxx, *board.cxxflags, "-E", *[f"-I{d}" for d in include_dirs], str(src)])
    result, current, line = [], None, 0
    for raw in proc.stdout.split("\n"):
        m = _LINEMARKER.match(raw)
        if m:
            line, current = int(m.group(1)), m.group(2)
            continue
        if current and current.endswith(".ino") and raw.strip() and not raw.startswith("#"):
            result.append((current, line, raw))
        line += 1
    return result


def find_prototypes(ino_lines):
    """Prototypes for the top-level function definitions of the preprocessed .ino lines:
    ([(file, line, prototype)], (file, line) of the first definition or None)."""
    tokens = [(f, n, t) for f, n, text in ino_lines for t in _TOKEN.findall(text)]
    declared, defined, first = set(), [], None
    scopes, decl = [], []

    def function_head(toks):
        words = [t for _, _, t in toks]
        if "(" not in words or "=" in words[:words.index("(")] or words[0] in ("namespace", "using", "typedef"):
            return None
        head = words[:words.index("(")]
        if not head or head[-1] in _NOT_FUNCTIONS or not re.match(r"[A-Za-z_]\w*$", head[-1]) or len(head) < 2:
            return None
        if any(w in ("class", "struct", "union", "enum") for w in head) and ")" not in words:
            return None
        depth, end = 0, None
        for i, w in enumerate(words):
            depth += (w == "(") - (w == ")")
            if w == ")" and depth == 0:
                end = i
                break
        if end is None:
            return None
        rest = words[end + 1:]
        if any(w not in ("const", "noexcept", "override", "final") for w in rest):
            return None
        return " ".join(words).replace(" ( ", "(").replace(" )", ")").replace("( ", "(").replace(" ,", ",")

    for tok in tokens:
        f, n, t = tok
        top = all(s == "extern" for s in scopes)
        if t == "{":
            if top:
                words = [w for _, _, w in decl]
                head = function_head(decl) if decl else None
                if words[:1] == ["namespace"] or (words[:1] == ["inline"] and "namespace" in words[:2]):
                    scopes.append("namespace")
                elif words[:1] == ["extern"] and len(words) == 2 and words[1].startswith('"'):
                    scopes.append("extern")
                elif head:
                    scopes.append("function")
                    defined.append((decl[0][0], decl[0][1], head + ";"))
                    first = first or (decl[0][0], decl[0][1])
                elif any(w in ("class", "struct", "union", "enum") for w in words):
                    scopes.append("class")
                else:
                    scopes.append("other")
                decl = []
            else:
                scopes.append("other")
        elif t == "}":
            if scopes:
                scopes.pop()
            decl = []
        elif t == ";":
            if top and decl:
                head = function_head(decl)
                if head:
                    declared.add(re.sub(r"\s+", "", head))
            decl = []
        elif top:
            decl.append(tok)
    prototypes, seen = [], set()
    for f, n, proto in defined:
        key = re.sub(r"\s+", "", proto[:-1])
        if key not in declared and key not in seen:
            seen.add(key)
            prototypes.append((f, n, proto))
    return prototypes, first


def preprocess_sketch(sketch_dir, board, core_dir, libraries, work):
    """Copies the sketch folder to `work` (as the builder copies it to its build folder),
    writes <Sketch>.ino.cpp there and resolves the sketch's libraries.
    libraries: {library name: library folder}. Returns (.ino.cpp path, [the sketch's
    other sources], [library src folders])."""
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(sketch_dir, work, ignore=shutil.ignore_patterns("*.ino"))
    index = {}
    for name, folder in sorted(libraries.items()):
        for header in sorted(p.name for p in (Path(folder) / "src").glob("*.h")):
            index.setdefault(header, Path(folder) / "src")
    lines = merged_sketch(sketch_dir)
    include_dirs, used = [Path(core_dir)], []
    while True:
        try:
            ino_lines = _preprocessed_ino_lines(_render(lines), board, include_dirs, work)
            break
        except RuntimeError as e:
            m = _MISSING.search(str(e))
            if not m or m.group(1) not in index or index[m.group(1)] in used:
                raise
            used.append(index[m.group(1)])
            include_dirs.append(index[m.group(1)])
    prototypes, first = find_prototypes(ino_lines)
    insert_at = None
    if first:
        insert_at = next(i for i, (f, n, _) in enumerate(lines) if str(f) == first[0] and n == first[1])
    out = work / f"{Path(sketch_dir).name}.ino.cpp"
    out.write_text(_render(lines, insert_at, prototypes), encoding="utf-8")
    (work / "discovery.ino.cpp").unlink()
    return out, sources(work), used


def missing_headers(board, files, include_dirs):
    """Headers that `files` include and no include directory holds (g++ -MM -MG)."""
    proc = run([board.cxx, *board.cxxflags, "-MM", "-MG", *[f"-I{d}" for d in include_dirs], *map(str, files)])
    deps = proc.stdout.replace("\\\n", " ").split()
    return sorted({d for d in deps if not d.endswith(":") and not Path(d).is_absolute()})


def build_core(board, core_dir, startup_dir, out_dir, jobs):
    """core.a: the shim core (core.cpp) and the QEMU startup code (startup.cc, line.cc)."""
    files = {Path(core_dir) / "core.cpp": "core.cpp.o", Path(startup_dir) / "startup.cc": "startup.cc.o",
             Path(startup_dir) / "line.cc": "line.cc.o"}
    logs = compile_all(board, files, out_dir, [core_dir, startup_dir], ["-Wall", "-Wextra"], jobs)
    archive = Path(out_dir) / "core.a"
    if archive.exists():
        archive.unlink()
    run([board.ar, "rcs", archive, *[Path(out_dir) / n for n in files.values()]])
    return archive, logs


def link(board, objects, core_archive, ldscript, elf):
    """Links as the builder does: the sketch's and the libraries' objects, then core.a,
    with --gc-sections; every heap entry point is wrapped to a function that fails the
    run (examples/cortex_m/startup.cc), so a sketch that allocates is caught."""
    heap = ["malloc", "free", "calloc", "realloc", "_malloc_r", "_free_r", "_calloc_r", "_realloc_r"]
    run([board.cxx, *board.ldflags, "-nostartfiles", "--specs=nano.specs", f"-T{ldscript}",
         "-Wl,--gc-sections", f"-Wl,-Map,{Path(elf).with_suffix('.map')}",
         *[f"-Wl,--wrap={h}" for h in heap], "-o", str(elf), *map(str, objects),
         "-Wl,--start-group", str(core_archive), "-lm", "-Wl,--end-group"])
    return Path(elf)


def run_qemu(qemu, elf, args, cwd, timeout=120):
    """Runs the firmware; semihosting arguments "key=value" reach the shim core.
    Returns (exit status, everything printed)."""
    config = ",".join(["enable=on", "target=native", f"arg={Path(elf).name}"] + [f"arg={a}" for a in args])
    proc = subprocess.run([qemu, "-M", "mps2-an386", "-nographic", "-semihosting-config", config,
                           "-kernel", str(elf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout


def size_of(elf, size_tool):
    """(flash bytes, static RAM bytes) from `size -A`: flash = code, constants and the
    .data image; RAM = .data + .bss (the stack comes on top)."""
    sections = {}
    for row in run([size_tool, "-A", str(elf)]).stdout.splitlines():
        parts = row.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    flash = sum(sections.get(s, 0) for s in (".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".init_array", ".data"))
    return flash, sections.get(".data", 0) + sections.get(".bss", 0)
