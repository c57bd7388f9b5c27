"""``neurodata demo --quick`` end to end: synthetic archive -> prepare -> frames -> training -> accuracy."""

from __future__ import annotations

import json
import re

from neurodata.cache import open_cache
from neurodata.cli.main import main


def test_quick_demo_runs_end_to_end_and_learns(tmp_path, capsys):
    root = tmp_path / "demo"
    assert main(["demo", "--quick", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy: (\d+\.\d)%", last)
    assert match, last

    result = json.loads((root / "demo.json").read_text())
    assert result["synthetic"] is True
    assert f"{100 * result['test_accuracy']:.1f}" == match.group(1)
    # 11 classes: chance is 9.1%; 11 test samples from an unseen user, 3 or more right is learning
    assert result["test_accuracy"] >= 3 / 11
    cache = open_cache(result["paths"]["cache"])
    assert len(cache["train"]) == 33 and len(cache["test"]) == 11  # 3 + 1 users x 11 gestures
    assert sorted(cache["test"].labels.tolist()) == list(range(11))
    rows = (root / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + result["config"]["epochs"]
    assert (root / "run" / "best.pt").is_file() and (root / "SyntheticDvsGesture.tar.gz").is_file()


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "something").write_text("keep me")
    assert main(["demo", "--quick", "--root", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["something"]
