"""A run folder rebuilds its model (``model.json`` + ``best.pt`` -> ``snn.models.load_run``), and the
validation part held out of train is seeded, stratified and disjoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurodata.loaders import stack_time_major
from snn.models import MODEL_JSON, ModelSpec, RunError, load_run, write_model_spec
from snn.train import TrainConfig, data_init, fit
from snn.train.split import holdout

SPEC = ModelSpec(
    model="dvsgesture-net",
    in_channels=2,
    input_size=(16, 16),
    num_classes=3,
    options={"channels": 4, "hidden": 8, "n_blocks": 2, "voting": 2, "backend": "torch"},
    representation={"type": "frame", "n_time_bins": 4, "sensor_size": [16, 16, 2]},
)


def samples(n: int, seed: int) -> list[tuple[np.ndarray, int]]:
    """``[T=4, 2, 16, 16]`` count frames; class ``c`` lights up the ``c``-th horizontal band."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = i % 3
        frames = rng.poisson(0.05, (4, 2, 16, 16))
        frames[:, :, 5 * label : 5 * label + 5] += rng.poisson(1.0, (4, 2, 5, 16))
        out.append((frames.astype(np.float32), label))
    return out


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 2-epoch run of a tiny zoo model: its folder and the trained model (the best epoch's weights)."""
    run_dir = tmp_path_factory.mktemp("run")
    model = SPEC.build()
    loader = DataLoader(samples(12, 0), batch_size=4, collate_fn=stack_time_major)
    data_init(model, next(iter(loader)).inputs)  # so that the output layer fires
    config = TrainConfig(epochs=2, lr=1e-2, progress=False, run_dir=str(run_dir), monitor="train_loss")
    result = fit(model, loader, None, config)
    write_model_spec(run_dir, SPEC)
    state = torch.load(run_dir / "best.pt", weights_only=True)
    model.load_state_dict(state)
    return run_dir, model.eval(), result


def test_load_run_rebuilds_the_trained_model(trained_run):
    run_dir, model, result = trained_run
    loaded = load_run(run_dir)
    assert type(loaded) is type(model) and not loaded.training
    x = 8 * torch.from_numpy(np.stack([s for s, _ in samples(5, 1)])).transpose(0, 1)  # busy: spikes out
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    assert got.shape == (4, 5, 3)  # per-step [T, B, classes]
    assert expected.abs().sum() > 0  # the comparison is not between two silent networks
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    last = load_run(run_dir, checkpoint="last.pt")  # a training checkpoint holds the weights under "model"
    final = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    for name, tensor in last.state_dict().items():
        assert torch.equal(tensor, final[name]), name
    written = json.loads((run_dir / MODEL_JSON).read_text())
    assert written["representation"]["n_time_bins"] == 4 and written["readout"] == "mean"
    assert ModelSpec.from_dict(written) == SPEC


def test_load_run_errors_name_the_file(trained_run, tmp_path):
    run_dir, _, _ = trained_run
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / MODEL_JSON}: no such file"):
        load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nothing.pt: no such file"):
        load_run(run_dir, checkpoint="nothing.pt")

    def copy_with(**changes) -> str:
        folder = tmp_path / "copy"
        folder.mkdir(exist_ok=True)
        (folder / "best.pt").write_bytes((run_dir / "best.pt").read_bytes())
        values = {**SPEC.to_dict(), **changes}
        (folder / MODEL_JSON).write_text(json.dumps(values))
        return str(folder)

    with pytest.raises(RunError, match=rf"{MODEL_JSON}: unknown model 'no-such-net'"):
        load_run(copy_with(model="no-such-net"))
    with pytest.raises(RunError, match=r"best.pt: the weights do not fit the model .*model.json.*size mismatch"):
        load_run(copy_with(options={**SPEC.options, "channels": 8}))
    (tmp_path / "copy" / MODEL_JSON).write_text("{not json")
    with pytest.raises(RunError, match=rf"{MODEL_JSON}: not valid JSON"):
        load_run(tmp_path / "copy")
    for field, value, said in (
        ("in_channels", "two", "in_channels is 'two'"),
        ("in_channels", -2, "in_channels is -2"),
        ("num_classes", True, "num_classes is True"),
        ("input_size", 16, r"input_size is 16, not \[height, width\]"),
        ("input_size", [16, 0], "input_size is 0"),
    ):
        with pytest.raises(RunError, match=rf"{MODEL_JSON}: {said}"):
            load_run(copy_with(**{field: value}))


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "not a checkpoint torch.load can read"),
        (b"garbage" * 100, "not a checkpoint torch.load can read"),
        ("half", "not a checkpoint torch.load can read"),
        ("list", "holds a list, not a state dict"),
    ],
)
def test_load_run_names_a_damaged_checkpoint_in_one_line(trained_run, tmp_path, content, said):
    run_dir, _, _ = trained_run
    (tmp_path / MODEL_JSON).write_bytes((run_dir / MODEL_JSON).read_bytes())
    good = (run_dir / "best.pt").read_bytes()
    if content == "half":
        content = good[: len(good) // 2]
    elif content == "list":
        torch.save([1, 2], tmp_path / "list.pt")
        content = (tmp_path / "list.pt").read_bytes()
    (tmp_path / "best.pt").write_bytes(content)
    with pytest.raises(RunError, match=rf"best.pt: {said}") as caught:
        load_run(tmp_path)
    assert "\n" not in str(caught.value)


def test_holdout_is_seeded_stratified_and_disjoint():
    labels = np.repeat(np.arange(11), 10)  # 110 samples, 10 per class
    split = holdout(labels, 0.1, seed=0)
    assert len(split.val) == 11 and len(split.train) == 99
    assert sorted(labels[split.val].tolist()) == list(range(11))  # one of each class
    assert not set(split.val) & set(split.train) and len(set(split.val) | set(split.train)) == 110
    again, other = holdout(labels, 0.1, seed=0), holdout(labels, 0.1, seed=1)
    assert np.array_equal(again.val, split.val) and not np.array_equal(other.val, split.val)
    with pytest.raises(ValueError, match="leaves no validation sample"):
        holdout(labels[:4], 0.1)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        holdout(labels, 1.0)
