"""Seed 001's multiclass hinge loss in the scratch engine (against torch.nn.MultiMarginLoss and
finite differences), and `cnnlab scratch train --loss hinge --elastic-net`."""

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import ConfigError, ShapeError
from cnnlab.scratch import Model, MulticlassHinge, Penalty, build
from cnnlab.scratch.gradcheck import check_loss, standard_losses


def test_matches_multimarginloss_times_classes(rng):
    """MultiMarginLoss divides the seed's sum over j != y by the number of classes C."""
    scores = rng.standard_normal((16, 7)) * 2
    labels = rng.integers(0, 7, 16)
    hinge = MulticlassHinge()
    loss = hinge.forward(scores, labels)
    grad = hinge.backward()
    st = torch.tensor(scores, requires_grad=True)
    ref = torch.nn.MultiMarginLoss(margin=1.0)(st, torch.tensor(labels)) * 7
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, st.grad.numpy(), atol=1e-12)
    assert 0 < (grad != 0).mean() < 1  # some margins violated, some not: both branches checked


def test_seed_formula_by_hand():
    # scores of seed 001's style: true class 0 scores 3.2; 5.1 - 3.2 + 1 = 2.9; -1.7 - 3.2 + 1 < 0
    hinge = MulticlassHinge()
    assert hinge.forward(np.array([[3.2, 5.1, -1.7]]), [0]) == pytest.approx(2.9)
    np.testing.assert_array_equal(hinge.backward(), [[-1, 1, 0]])
    assert hinge.forward(np.array([[3.0, 2.0, 1.0]]), [0]) == 0.0  # every margin met exactly


def test_gradient_matches_finite_differences():
    for title, loss, logits, labels in standard_losses():
        assert check_loss(loss, logits, labels) < 1e-8, title


def test_bad_labels_and_unknown_loss():
    with pytest.raises(ShapeError, match="must lie in"):
        MulticlassHinge().forward(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ShapeError, match="mb labels"):
        MulticlassHinge().forward(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="unknown loss 'hindge'") as e:
        build("lenet5", (28, 28, 1), 10, loss="hindge")
    assert "hinge" in e.value.hint


def test_hinge_model_trains_and_keeps_its_loss(tmp_path, rng):
    x = rng.standard_normal((64, 4, 4, 1)).astype(np.float32)
    y = (x[:, :2].sum((1, 2, 3)) > x[:, 2:].sum((1, 2, 3))).astype(int)
    model = build(
        [["conv", {"ksize": 3, "chn": 4}], ["full", {"width": 8}]], (4, 4, 1), 2, loss="hinge"
    )
    from cnnlab.scratch import SGD

    opt = SGD(0.1, momentum=0.9)
    first = model.train_step(x, y, opt)
    for _ in range(30):
        last = model.train_step(x, y, opt)
    assert last < first / 3
    loaded = Model.load(model.save(tmp_path / "h.npz"))
    assert loaded.loss_name == "hinge" and isinstance(loaded.loss, MulticlassHinge)
    assert loaded.evaluate(x, y)[0] == pytest.approx(model.evaluate(x, y)[0])


def _train(tmp_path, name, *extra):
    path = tmp_path / f"{name}.npz"
    args = ["scratch", "train", "lenet5", "--epochs", "1", "--limit", "128", "--no-progress"]
    assert main([*args, "--optimizer", "sgd", "--lr", "0.05", "--save", str(path), *extra]) == 0
    return Model.load(path)


def test_cli_hinge_and_elastic_net(tmp_path, capsys):
    plain = _train(tmp_path, "plain", "--loss", "hinge")
    out = " ".join(capsys.readouterr().out.split())
    assert "hinge loss" in out and "penalty" not in out
    net = _train(tmp_path, "net", "--loss", "hinge", "--elastic-net", "0.5", "--l1", "0.002")
    out = " ".join(capsys.readouterr().out.split())
    assert "elastic net 0.002 * sum(0.5 W^2 + |W|)" in out
    assert plain.loss_name == net.loss_name == "hinge"

    def size(m):
        return sum(np.abs(layer.params["w"]).sum() for layer in m.layers if "w" in layer.params)

    assert size(net) < size(plain)  # same seed and batches: only the penalty differs


def test_cli_elastic_net_is_the_library_penalty():
    from cnnlab.cli.scratch import _penalty

    class Args:
        l2, l1, elastic_net = 0.0, 1e-3, 0.5

    p = _penalty(Args())
    ref = Penalty.elastic(1e-3, 0.5)
    assert (p.l2, p.l1) == (ref.l2, ref.l1) == (5e-4, 1e-3)


@pytest.mark.parametrize(
    "extra,msg",
    [
        (["--elastic-net", "0.5"], "needs a strength"),
        (["--elastic-net", "0.5", "--l1", "1e-3", "--l2", "1e-3"], "drop --l2"),
        (["--loss", "svm"], "unknown loss 'svm'"),
    ],
)
def test_cli_bad_options_exit_2(extra, msg, capsys):
    assert main(["scratch", "train", "lenet5", "--epochs", "1", "--limit", "8", *extra]) == 2
    assert msg in " ".join(capsys.readouterr().err.split())
