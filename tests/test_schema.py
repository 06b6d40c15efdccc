"""The code made from schema/*.fbs is current, and the part of TFLite's schema the
trainer declares (schema/tflite_subset.fbs) agrees with the schema TensorFlow ships:
every enum value, and every field's id, of what the subset declares."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import generate_schema_code  # noqa: E402


def test_generated_schema_code_is_current():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_schema_code.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _camel(name):
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _tensorflow_field_ids(table_class):
    """{accessor: field id} of a table class in TensorFlow's generated schema."""
    import inspect

    source = inspect.getsource(table_class)
    found = re.findall(r"def (\w+)\(self(?:, j)?\):\n\s+o = flatbuffers.number_types.UOffsetTFlags.py_type"
                       r"\(self._tab.Offset\((\d+)\)\)", source)
    return {name: (int(slot) - 4) // 2 for name, slot in found}


@pytest.fixture(scope="module")
def subset():
    return generate_schema_code.parse((ROOT / "schema" / "tflite_subset.fbs").read_text())


def test_tflite_subset_enums_match_tensorflow(subset):
    from tensorflow.lite.python import schema_py_generated as tf_schema

    _, _, _, enums, _ = subset
    for name, (_, items) in enums.items():
        theirs = getattr(tf_schema, name)
        for item, value in items:
            assert getattr(theirs, item) == value, f"{name}.{item}"


def test_tflite_subset_fields_match_tensorflow(subset):
    from tensorflow.lite.python import schema_py_generated as tf_schema

    _, _, _, _, tables = subset
    checked = 0
    for name, fields in tables.items():
        if name == "Opaque":
            continue
        ids = _tensorflow_field_ids(getattr(tf_schema, name))
        for field_id, (field, _, _) in enumerate(fields):
            accessor = _camel(field)
            assert ids.get(accessor) == field_id, f"{name}.{field}: TensorFlow's id {ids.get(accessor)}"
            checked += 1
    assert checked > 60
