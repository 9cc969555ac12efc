"""`--loss hinge`: seed 001's multiclass SVM loss in the trainer, the same numbers as the
NumPy engine's gradient-checked layer and torch.nn.MultiMarginLoss."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.scratch import MulticlassHinge
from cnnlab.training.config import TrainConfig
from cnnlab.training.evaluate import evaluate
from cnnlab.training.tasks import classification_loss, multiclass_hinge
from cnnlab.training.trainer import train


def test_hinge_equals_multimarginloss_times_classes_and_the_scratch_layer():
    g = torch.Generator().manual_seed(0)
    s = (torch.randn(12, 5, generator=g, dtype=torch.float64) * 2).requires_grad_()
    y = torch.randint(0, 5, (12,), generator=g)
    loss = multiclass_hinge(s, y)
    loss.backward()
    ref = torch.nn.MultiMarginLoss(margin=1.0)(s.detach(), y) * 5
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    scratch = MulticlassHinge()
    assert loss.item() == pytest.approx(scratch.forward(s.detach().numpy(), y.numpy()), rel=1e-12)
    np.testing.assert_allclose(s.grad.numpy(), scratch.backward(), atol=1e-12)


def test_aux_heads_and_soft_targets():
    g = torch.Generator().manual_seed(1)
    main_, a1 = torch.randn(2, 8, 4, generator=g).unbind(0)
    y = torch.randint(0, 4, (8,), generator=g)
    loss, out = classification_loss(
        (main_, a1), y, label_smoothing=0.0, aux_w=0.3, criterion=multiclass_hinge
    )
    assert torch.allclose(loss, multiclass_hinge(main_, y) + 0.3 * multiclass_hinge(a1, y))
    assert out is main_
    with pytest.raises(ConfigError, match="one class per image"):
        classification_loss(main_, torch.eye(4)[y], label_smoothing=0.0, aux_w=0.3,
                            criterion=multiclass_hinge)  # fmt: skip


def test_training_with_hinge_learns_and_reports_the_hinge_loss(tmp_path, bars, tiny_config):
    tr, te = bars
    res = train(tiny_config(tmp_path, epochs=2, loss="hinge"), train_set=tr, test_set=te)
    assert res.status == "completed" and res.summary["test"]["top1"] > 50
    cfg = yaml.safe_load((res.run_dir / "config.yaml").read_text())
    assert cfg["loss"] == "hinge"
    # the reported test loss is the hinge of the chosen model's logits, not a cross-entropy
    from cnnlab.training.inference import load_trained

    assert res.summary["test"]["weights"].startswith(("best.pt", "last"))
    ck = "best.pt" if res.summary["test"]["weights"].startswith("best.pt") else "last.pt"
    trained = load_trained(res.run_dir / ck)
    with torch.no_grad():
        logits = trained.model.eval()(trained.pipeline(te.images)).float()
    want = float(multiclass_hinge(logits, te.labels))
    assert res.summary["test"]["loss"] == pytest.approx(want, rel=1e-4)
    got = evaluate(trained.model, te.images, te.labels, trained.pipeline, num_classes=4,
                   loss_fn=multiclass_hinge).loss  # fmt: skip
    assert got == pytest.approx(want, rel=1e-5)


def test_hinge_refuses_label_smoothing_and_mixup():
    with pytest.raises(ConfigError, match="label-smoothing"):
        TrainConfig(loss="hinge", label_smoothing=0.1).validate()
    with pytest.raises(ConfigError, match="mixup"):
        TrainConfig(loss="hinge", augment="flip-crop,mixup=0.2").validate()
    TrainConfig(loss="hinge", augment="flip-crop,mixup=0").validate()  # mixup off is fine
    with pytest.raises(ConfigError, match="did you mean"):
        TrainConfig(loss="hindge").validate()


def test_cli_bad_loss_options_exit_2(tmp_path, capsys):
    base = ["train", "lenet5", "--data", "digits", "--epochs", "1", "--runs-dir", str(tmp_path)]
    assert main([*base, "--loss", "hinge", "--label-smoothing", "0.1"]) == 2
    assert "hinge" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before any run folder
    r = subprocess.run([sys.executable, "-m", "cnnlab", *base, "--loss", "svm"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr and "hinge" in r.stderr
