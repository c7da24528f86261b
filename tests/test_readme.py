"""The README's Python quickstart runs as written (in a temporary folder)."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def quickstart_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart in Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_quickstart_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = quickstart_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    xor_loss = float(re.search(r"-> ([0-9.]+)", out).group(1))
    assert xor_loss < 0.01, out
    accuracy = float(re.search(r"'accuracy': ([0-9.]+)", out).group(1))
    assert accuracy > 0.85, out  # one epoch on 8,000 digits
    assert (tmp_path / "convnet.npz").exists()
