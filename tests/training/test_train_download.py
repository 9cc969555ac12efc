"""`--download` reaches the dataset loader (which fetches through torchvision when online)."""

import cnnlab.data.datasets
from cnnlab.cli import main
from cnnlab.errors import DataError


def test_train_download_flag_is_passed_to_the_loader(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_load(name, split="train", data_dir=None, download=False, **kw):
        calls.append((name, split, data_dir, download))
        raise DataError(f"{name} not here", "put it there")

    monkeypatch.setattr(cnnlab.data.datasets, "load_dataset", fake_load)
    argv = ["train", "lenet5", "--data", "cifar100", "--data-dir", str(tmp_path)]
    assert main([*argv, "--runs-dir", str(tmp_path / "runs"), "--download"]) == 2
    assert calls == [("cifar100", "train", str(tmp_path), True)]
    assert "cifar100 not here" in capsys.readouterr().err

    calls.clear()
    assert main([*argv, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert calls[0][3] is False
