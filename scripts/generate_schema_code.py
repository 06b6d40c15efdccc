"""Generates the code that reads and writes the project's two FlatBuffers schemas,
so each enum value, field id and default is written once, in schema/*.fbs:

- micro_kernels/src/schema/tflite_schema.h and training_plan_schema.h: typed
  readers over micro_kernels' own bounds-checked reader (no FlatBuffers library,
  so the trainer builds next to whichever FlatBuffers a TFLM program brings), and
  Verify* functions that walk every declared field;
- tflm_train/converter/plan_schema.py: the plan's enums and fields, for the writer.

    python scripts/generate_schema_code.py [--check]

--check compares instead of writing and exits 1 when a file is not current.
Handles the subset of the .fbs grammar these schemas use: namespace,
file_identifier, root_type, enums with explicit values, and tables whose fields
are scalars, enums, strings, tables or vectors of those.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = {  # schema -> (C++ header, Python module or None)
    "schema/tflite_subset.fbs": ("micro_kernels/src/schema/tflite_schema.h", None),
    "schema/training_plan.fbs": ("micro_kernels/src/schema/training_plan_schema.h",
                                 "tflm_train/converter/plan_schema.py"),
}
# FlatBuffers scalar -> (C++ type, bytes, flatbuffers.Builder Prepend*Slot suffix)
SCALARS = {
    "bool": ("bool", 1, "Bool"), "byte": ("int8_t", 1, "Int8"), "ubyte": ("uint8_t", 1, "Uint8"),
    "short": ("int16_t", 2, "Int16"), "ushort": ("uint16_t", 2, "Uint16"), "int": ("int32_t", 4, "Int32"),
    "uint": ("uint32_t", 4, "Uint32"), "long": ("int64_t", 8, "Int64"), "ulong": ("uint64_t", 8, "Uint64"),
    "float": ("float", 4, "Float32"), "double": ("double", 8, "Float64"),
}
HEADER = "Generated from {schema} by scripts/generate_schema_code.py; do not edit."


def parse(text):
    """(namespace, identifier, root, enums {name: (type, [(item, value)])}, tables {name: [(field, type, default)]})."""
    text = re.sub(r"//[^\n]*", "", text)
    namespace = re.search(r"namespace\s+([\w.]+)\s*;", text).group(1)
    identifier = re.search(r'file_identifier\s+"(\w{4})"\s*;', text).group(1)
    root = re.search(r"root_type\s+(\w+)\s*;", text).group(1)
    enums = {}
    for name, base, body in re.findall(r"enum\s+(\w+)\s*:\s*(\w+)\s*\{([^}]*)\}", text):
        items = [re.fullmatch(r"(\w+)\s*=\s*(-?\d+)", item.strip()) for item in body.split(",") if item.strip()]
        if not all(items):
            raise SystemExit(f"enum {name}: every value must be explicit")
        enums[name] = (base, [(m.group(1), int(m.group(2))) for m in items])
    tables = {}
    for name, body in re.findall(r"table\s+(\w+)\s*\{([^}]*)\}", text):
        fields = []
        for decl in (d.strip() for d in body.split(";")):
            if decl:
                m = re.fullmatch(r"(\w+)\s*:\s*(\[?\w+\]?)\s*(?:=\s*([-\w.]+))?", decl)
                if m is None:
                    raise SystemExit(f"table {name}: cannot read field '{decl}'")
                fields.append((m.group(1), m.group(2), m.group(3)))
        tables[name] = fields
    return namespace, identifier, root, enums, tables


def _default(kind, default, enums):
    """The C++ literal of a scalar or enum field's default."""
    if kind in enums:
        base, items = enums[kind]
        value = dict(items)[default] if default is not None else 0
        return f"static_cast<{SCALARS[base][0]}>({value})"
    cpp = SCALARS[kind][0]
    if cpp == "bool":
        return "1" if default == "true" else "0"
    if default is None:
        return "0"
    if cpp == "float":
        return default + ("f" if "." in default else ".0f")
    return default


def cpp_header(schema, namespace, identifier, root, enums, tables):
    guard = "TFLM_TRAIN_SCHEMA_" + Path(schema).stem.upper() + "_H_"
    ns = "tflm_train::" + namespace.split(".")[-1]
    out = [f"// {HEADER.format(schema=schema)}", f"#ifndef {guard}", f"#define {guard}", "",
           "#include <stdint.h>", "", '#include "flatbuffer_reader.h"', "", f"namespace {ns} {{", "",
           f'constexpr const char kFileIdentifier[] = "{identifier}";', ""]
    for name, (base, items) in enums.items():
        out.append(f"enum class {name} : {SCALARS[base][0]} {{")
        out += [f"  {item} = {value}," for item, value in items]
        out += ["};", ""]
    out += [f"class {name};" for name in tables] + [""]
    for name, fields in tables.items():
        out += [f"class {name} {{", " public:", f"  {name}() = default;",
                f"  explicit {name}(fb::Table table) : t_(table) {{}}",
                "  bool present() const { return t_.present(); }",
                "  const fb::Table& table() const { return t_; }"]
        for i, (field, kind, default) in enumerate(fields):
            element = kind[1:-1] if kind.startswith("[") else None
            if element is None and (kind in SCALARS or kind in enums):
                base = enums[kind][0] if kind in enums else kind
                cpp = SCALARS[base][0]
                read = f"t_.Get<{'uint8_t' if cpp == 'bool' else cpp}>({i}, {_default(kind, default, enums)})"
                if cpp == "bool":
                    read = f"{read} != 0"
                if kind in enums:
                    out.append(f"  {kind} {field}() const {{ return static_cast<{kind}>({read}); }}")
                else:
                    out.append(f"  {cpp} {field}() const {{ return {read}; }}")
            elif kind == "string":
                out.append(f"  const char* {field}(uint32_t* length = nullptr) const "
                           f"{{ return t_.GetString({i}, length); }}")
            elif element is None:  # a table
                out.append(f"  {kind} {field}() const {{ return {kind}(t_.GetTable({i})); }}")
            elif element in tables:
                out.append(f"  fb::Vector {field}() const {{ return t_.GetVector({i}, 4); }}")
                out.append(f"  {element} {field}(uint32_t i) const {{ return {element}({field}().TableAt(i)); }}")
            else:
                size = SCALARS[enums[element][0] if element in enums else element][1]
                out.append(f"  fb::Vector {field}() const {{ return t_.GetVector({i}, {size}); }}")
        out += [" private:", "  fb::Table t_;", "};", ""]
    out.append("// Each Verify reads every declared field, so a field that leaves the buffer")
    out.append("// marks the Reader failed wherever it is; tables and vectors of tables recurse.")
    out += [f"inline void Verify(const {name}& x);" for name in tables] + [""]
    for name, fields in tables.items():
        out.append(f"inline void Verify(const {name}& x) {{")
        out.append("  if (!x.present()) return;" if fields else "  (void)x;")
        for field, kind, _ in fields:
            element = kind[1:-1] if kind.startswith("[") else None
            if element in tables:
                out.append(f"  for (uint32_t i = 0; i < x.{field}().size(); ++i) Verify(x.{field}(i));")
            elif element is None and kind in tables:
                out.append(f"  Verify(x.{field}());")
            else:
                out.append(f"  (void)x.{field}();")
        out += ["}", ""]
    out += [f"inline {root} Get{root}(const fb::Reader& reader) {{ return {root}(reader.Root()); }}", "",
            f"}}  // namespace {ns}", "", f"#endif  // {guard}", ""]
    return "\n".join(out)


def python_module(schema, namespace, identifier, root, enums, tables):
    out = [f'"""{HEADER.format(schema=schema)}"""', "", "import enum", "",
           f'FILE_IDENTIFIER = b"{identifier}"', f'ROOT = "{root}"', "", ""]
    for name, (_, items) in enums.items():
        out.append(f"class {name}(enum.IntEnum):")
        out += [f"    {item} = {value}" for item, value in items]
        out += ["", ""]
    out.append("# Per table, in field-id order: (field, kind, default), kind being a scalar")
    out.append("# (FlatBuffers' name), an enum, 'string', a table or '[element]'.")
    out.append("TABLES = {")
    for name, fields in tables.items():
        out.append(f"    {name!r}: [")
        for field, kind, default in fields:
            if kind in enums:
                value = dict(enums[kind][1])[default] if default is not None else 0
            elif kind == "bool":
                value = default == "true"
            elif kind in SCALARS:
                value = (float(default) if SCALARS[kind][0] in ("float", "double") else int(default)) \
                    if default is not None else (0.0 if SCALARS[kind][0] in ("float", "double") else 0)
            else:
                value = None
            out.append(f"        ({field!r}, {kind!r}, {value!r}),")
        out.append("    ],")
    out += ["}", "# The scalar type of each enum.", "ENUM_TYPES = {" +
            ", ".join(f"{name!r}: {base!r}" for name, (base, _) in enums.items()) + "}", ""]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is not current")
    args = parser.parse_args()
    stale = []
    for schema, (header, module) in SCHEMAS.items():
        parsed = parse((ROOT / schema).read_text())
        outputs = [(header, cpp_header(schema, *parsed))]
        if module:
            outputs.append((module, python_module(schema, *parsed)))
        for path, text in outputs:
            target = ROOT / path
            if args.check:
                if not target.exists() or target.read_text() != text:
                    stale.append(path)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    if stale:
        print("not current (run scripts/generate_schema_code.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
