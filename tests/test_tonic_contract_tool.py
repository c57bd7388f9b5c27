"""tools/tonic_contract.py on a stand-in for Tonic's test folder (Tonic's own tests are GPL and not
copied here): the import line is swapped, failures are checked against the documented list."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "tonic_contract.py"
spec = importlib.util.spec_from_file_location("tonic_contract", TOOL)
contract = importlib.util.module_from_spec(spec)
spec.loader.exec_module(contract)

HEADER = "from utils import size\n\nimport tonic.transforms as transforms\n\n\n"


def stand_in(folder: Path, representations_body: str) -> Path:
    folder.mkdir()
    (folder / "utils.py").write_text("size = (4, 3, 2)\n")
    (folder / "test_transforms.py").write_text(
        HEADER + "def test_uses_ours():\n    assert transforms.__name__ == 'neurodata.transforms'\n\n\n"
        "def test_toframe_empty():\n    assert False, 'a documented difference'\n"
    )
    (folder / "test_chained_transforms.py").write_text(HEADER + "def test_compose():\n    assert transforms.Compose\n")
    (folder / "test_representations.py").write_text(HEADER + representations_body)
    return folder


def test_the_documented_list_is_read_from_the_page():
    listed = contract.documented_failures()
    assert "test_transforms.py::test_toframe_empty" in listed
    assert "test_representations.py::test_representation_frame_wrong_sensor_size" in listed


def test_documented_failures_pass_and_undocumented_ones_fail(tmp_path, capsys):
    ok = stand_in(tmp_path / "ok", "def test_frame():\n    assert transforms.ToFrame(size, n_time_bins=1)\n")
    assert contract.main([str(ok)]) == 0
    out = capsys.readouterr().out
    assert "3 passed, 1 failed of 4 Tonic tests" in out and "documented   test_transforms.py::test_toframe_empty" in out
    bad = stand_in(tmp_path / "bad", "def test_new_thing():\n    assert False\n")
    assert contract.main([str(bad)]) == 1
    assert "UNDOCUMENTED test_representations.py::test_new_thing" in capsys.readouterr().out


def test_a_folder_without_the_files_is_refused(tmp_path, capsys):
    assert contract.main([str(tmp_path)]) == 2
    assert "test_transforms.py: missing" in capsys.readouterr().err
    folder = stand_in(tmp_path / "no-import", "")
    (folder / "test_representations.py").write_text("import numpy\n")
    assert contract.main([str(folder)]) == 2
    assert "expected one line 'import tonic.transforms as transforms'" in capsys.readouterr().err


def test_only_the_import_line_changes(tmp_path):
    source = stand_in(tmp_path / "src", "def test_x():\n    pass\n")
    target = tmp_path / "out"
    target.mkdir()
    contract.copy_tests(source, target)
    for name in contract.FILES:
        before, after = (source / name).read_text(), (target / name).read_text()
        assert after == before.replace("import tonic.transforms as", "import neurodata.transforms as")
