"""The seed programs written with fastnn reproduce every expected number listed in
docs/design.md ("What fastnn is built from")."""

from __future__ import annotations

import doctest
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn import backends, examples
from fastnn.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


def test_package_docstring_example():
    result = doctest.testmod(examples, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_least_squares():
    assert examples.run("least_squares")["error"] == pytest.approx(22.0, abs=1e-12)


def test_gradient_descent():
    assert examples.run("gradient_descent")["x"] == pytest.approx(1.0928, abs=5e-5)


def test_linear_regression():
    result = examples.run("linear_regression")
    assert result["b"] == pytest.approx(3.3045, abs=5e-5)
    assert result["m"] == pytest.approx(2.9661, abs=5e-5)


def test_perceptron_learns_or_and_explains_xor(capsys):
    result = examples.run("perceptron")
    assert result["or"] == [0, 1, 1, 1] and result["or_correct"] == 4
    assert result["xor_correct"] < 4  # no line separates XOR
    assert "Minsky and Papert" in capsys.readouterr().out


@pytest.mark.parametrize("seed", range(10))
def test_perceptron_learns_or_from_any_start(seed):
    from fastnn.examples import perceptron

    assert perceptron.predict(perceptron.train(perceptron.OR, seed=seed)).tolist() == [0, 1, 1, 1]


def test_backprop_xor_matches_the_numpy_seed_program():
    """The first 500 steps, step for step, against the seed's own NumPy update rule."""
    from fastnn.examples import backprop_xor as xor

    model, _ = xor.train(steps=500)
    draws = np.random.RandomState(1)
    syn0 = 2 * draws.random_sample((3, 4)) - 1
    syn1 = 2 * draws.random_sample((4, 1)) - 1
    for _ in range(500):
        l1 = 1 / (1 + np.exp(-(xor.INPUTS @ syn0)))
        l2 = 1 / (1 + np.exp(-(l1 @ syn1)))
        l2_delta = (xor.XOR - l2) * l2 * (1 - l2)
        l1_delta = (l2_delta @ syn1.T) * l1 * (1 - l1)
        syn1 += l1.T @ l2_delta
        syn0 += xor.INPUTS.T @ l1_delta
    np.testing.assert_allclose(model[0].weights.tensor, syn0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model[1].weights.tensor, syn1, rtol=1e-10, atol=1e-12)


def test_neuron_and_perceptron_and():
    result = examples.run("neuron")
    assert result["neuron"] == pytest.approx(0.99909, abs=5e-6)
    assert result["neuron"] == pytest.approx(1 / (1 + np.exp(-7.0)), rel=1e-12)
    assert result["and"] == [0, 0, 0, 1]


def test_single_layer():
    assert examples.run("single_layer")["new_case"] == pytest.approx(0.99994, abs=5e-6)


def test_framework_experiments(tmp_path):
    result = examples.run("framework", out=str(tmp_path))
    # (a) 20 epochs recover W and B to within 1e-4; 10 (the article's count) do not
    assert result["error_20_epochs"] < 1e-4
    assert result["error_10_epochs"] > 1e-4
    # (b) one Linear layer cannot fit x1 * x2; the 2-10-1 sigmoid network can
    linear, network = result["linear_losses"], result["network_losses"]
    assert len(linear) == len(network) == 50
    assert linear[-1] > 0.5 * linear[0]
    assert network[-1] < 0.1 * linear[-1]
    pytest.importorskip("matplotlib")
    figure = Path(result["figure"])
    assert figure.parent == tmp_path and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chain_rule():
    result = examples.run("chain_rule")
    assert (result["e"], result["de_da"], result["de_db"]) == (6.0, 2.0, 5.0)
    if "torch" in result:
        assert result["torch"] == (2.0, 5.0)


def test_examples_run_on_the_reference_backend_too():
    with backends.use("reference"):
        assert examples.run("linear_regression")["b"] == pytest.approx(3.3045, abs=5e-5)
        assert examples.run("single_layer")["new_case"] == pytest.approx(0.99994, abs=5e-6)


def test_every_example_is_registered_with_a_main():
    package = Path(examples.__file__).parent  # the imported package, installed or not
    modules = sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")
    assert sorted(examples.names()) == modules
    for name in examples.names():
        assert callable(examples.load(name).main)
        assert (ROOT / "examples" / f"{name}.py").is_file(), f"examples/{name}.py is missing"
    with pytest.raises(KeyError, match="no example named"):
        examples.load("nope")


def test_top_level_script_runs(capsys):
    runpy.run_path(str(ROOT / "examples" / "least_squares.py"), run_name="__main__")
    assert "mean squared error 22.0" in capsys.readouterr().out


def test_cli_lists_and_runs_examples(capsys):
    assert cli(["examples"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in examples.names())
    assert cli(["examples", "chain-rule"]) == 0
    assert "de/db = 5" in capsys.readouterr().out
    assert cli(["examples", "nope"]) == 2
    assert "no example named 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_runs_all_examples_with_the_expected_numbers(tmp_path, capsys):
    """`fastnn examples all`; this is also where the 60,000-step XOR network is checked."""
    assert cli(["examples", "all", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in examples.names():
        assert f"== {name}:" in out
    xor = [float(line.split("->")[1].split()[0]) for line in out.splitlines()
           if line.strip().startswith("XOR(")]
    assert xor == [0.0026, 0.9967, 0.9970, 0.0039]
    for expected in ("mean squared error 22.0", "x = 1.0928", "b = 3.3045, m = 2.9661",
                     "sigmoid(7) = 0.99909", "[1, 0, 0] -> 0.99994", "de/da = 2, de/db = 5"):
        assert expected in out
    assert (tmp_path / "framework_product.png").is_file() or "matplotlib" in out


def test_cli_entry_point_in_a_fresh_interpreter(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastnn.cli", "examples", "least_squares"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mean squared error 22.0" in done.stdout


def test_the_examples_readme_cites_only_the_repository():
    """examples/README.md points at files in the repository, never outside it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    text = (root / "examples" / "README.md").read_text()
    assert not re.search(r"https?://|file:|\]\(/|(^|\s)/[a-z]", text), "a link out"
    for path in re.findall(r"`([\w./-]+\.(?:md|py|png))`", text):
        assert (root / path).exists() or (root / "examples" / path).exists() or \
            path.startswith("runs/"), path
