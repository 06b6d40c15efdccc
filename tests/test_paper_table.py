"""benchmarks/paper_table.py: the smallest run end to end, its method table, its cost
model, and the data set loaders it brings (skipped where a data set's package is
missing: `bash scripts/setup_benchmarks.sh` installs them)."""

import importlib.util
import os

import numpy as np
import pytest

import tflm_train
from tflm_train import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def paper_table():
    spec = importlib.util.spec_from_file_location("paper_table", os.path.join(ROOT, "benchmarks", "paper_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _loaded(name):
    try:
        return datasets.load(name)
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("name,shape,classes", [("mnist", (28, 28), 10), ("fashion_mnist", (28, 28), 10),
                                                ("watch", (128, 6), 7), ("digits", (32, 13), 10)])
def test_loaders_return_float32_samples_and_int64_labels(name, shape, classes):
    (x, y), (x_test, y_test) = _loaded(name)
    assert x.dtype == x_test.dtype == np.float32 and y.dtype == y_test.dtype == np.int64
    assert x.shape[1:] == x_test.shape[1:] == shape
    assert len(x) == len(y) and len(x_test) == len(y_test) and len(x_test) > 0
    assert set(np.unique(y)) == set(range(classes)) and np.isfinite(x).all()


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps seglearn"):
        datasets.load_watch()
    with pytest.raises(RuntimeError, match="dataset-fashion-mnist"):
        datasets.load_fashion_mnist(directory="/nonexistent")


def test_watch_split_is_by_subject():
    _loaded("watch")
    (_, _, train_subjects), (_, _, test_subjects) = datasets.load_watch(return_subjects=True)
    assert set(train_subjects) == set(range(1, 9)) and set(test_subjects) == {9, 10}


def test_unknown_or_missing_method_fails_clearly(paper_table, monkeypatch):
    with pytest.raises(SystemExit, match="unknown method"):
        paper_table.parse_methods("full,sparse_magic")
    monkeypatch.setitem(paper_table.METHODS, "future", paper_table.Method("Future", "NoSuchPolicyYet",
                                                                         lambda c, _: c()))
    with pytest.raises(SystemExit, match="tflm_train.NoSuchPolicyYet, which the installed tflm_train"):
        paper_table.parse_methods("full,future")


def test_cost_model_counts_the_trainers_macs(paper_table):
    """The per-layer decomposition behind the Cortex-M4 estimate adds up to the
    backward MACs the trainer counts for full backprop."""
    model = paper_table.cnn_1d((32, 13), 10, first_stride=1)
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.01))
    x = np.random.default_rng(0).normal(size=(1, 32, 13)).astype(np.float32)
    cost = paper_table.full_cost(model_bytes, x, np.zeros(1, np.int64))
    assert cost.forward_macs == 29120 + 12800 + 4608 + 1024 + 320
    assert cost.backward_macs == 29120 + 2 * (12800 + 4608 + 1024 + 320)
    # Per MAC, the model's averages lie between the cheapest and the dearest kernel's cost.
    c = paper_table.CORTEX_M4_COSTS
    forward = [c["conv_forward_cin1"], c["conv_forward"], c["fc_forward"]]
    backward = [c[k] for k in ("conv_weight_grad_cin1", "conv_weight_grad", "conv_weight_and_input_grad_cin1",
                               "conv_weight_and_input_grad", "fc_weight_grad_sgd", "fc_input_grad")]
    assert min(forward) < cost.forward_instructions / cost.forward_macs < max(forward)
    assert min(backward) < cost.backward_per_mac < max(backward)


def test_smallest_run_writes_table_and_plot(paper_table, tmp_path, capfd):
    _loaded("digits")
    results = paper_table.main(["--quick", "--limit", "40", "--datasets", "digits", "--methods", "full,tinypropv2",
                                "--out", str(tmp_path)])
    out = capfd.readouterr().out
    assert "digits/scratch TinyPropV2: chose lr=" in out and ", tau=" in out
    assert set(results) == {("digits", "scratch"), ("digits", "finetune")}
    assert [r.method for r in results[("digits", "finetune")]] == ["pretrained", "full", "tinypropv2"]
    for rows in results.values():
        full, tinypropv2 = rows[-2:]
        assert full.mean("backward_effort") == pytest.approx(1.0)
        assert 0 < tinypropv2.mean("backward_effort") < 1 and 0 <= tinypropv2.mean("accuracy") <= 1
        assert tinypropv2.mean("instructions") < full.mean("instructions")
    table = (tmp_path / "paper_table.md").read_text()
    assert table.count("| digits |") == 5 and "| TinyPropV2 |" in table
    assert (tmp_path / "digits.png").stat().st_size > 1000


def test_diverged_seeds_are_left_out_of_the_mean_and_counted(paper_table):
    result = paper_table.Result("full", "Full", 0.1, None)
    result.runs = [paper_table.Run(0.9, 1.0, 1.0, 0.0, 100.0),
                   paper_table.Run(*[float("nan")] * 5, diverged=True)]
    assert result.mean("accuracy") == pytest.approx(0.9) and result.diverged == 1
    (row,) = paper_table.table_rows({("digits", "scratch"): [result]})
    assert row[4] == "0.9000 ± 0.0000 (1 of 2 diverged)"
