"""Fine-tuning (seed 000): the head is replaced, the backbone frozen or slowed as asked."""

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.finetune import find_heads, replace_head
from cnnlab.training.trainer import train


@pytest.fixture
def base_run(tmp_path, bars, tiny_config):
    tr, te = bars
    return train(tiny_config(tmp_path, epochs=1, name="base"), train_set=tr, eval_set=te)


def _three_classes(image_set):
    return image_set(96, classes=3, seed=5), image_set(30, classes=3, seed=6, split="test")


def test_freeze_backbone_trains_only_the_new_head(tmp_path, base_run, image_set, tiny_config):
    tr, te = _three_classes(image_set)
    base = load_checkpoint(base_run.run_dir / "last.pt")["model"]
    cfg = tiny_config(tmp_path, epochs=1, name="ft", finetune=str(base_run.run_dir / "last.pt"),
                      freeze_backbone=True, lr=0.1)  # fmt: skip
    res = train(cfg, train_set=tr, eval_set=te)
    m = res.model
    assert m.classifier[-1].out_features == 3
    for name, p in m.named_parameters():
        if name.startswith("classifier.4"):
            assert p.requires_grad
        else:  # frozen: not trained, and bit-identical to the starting checkpoint
            assert not p.requires_grad, name
            assert torch.equal(p.detach(), base[name]), name
    assert not torch.equal(m.classifier[4].weight.detach()[:3], base["classifier.4.weight"][:3])
    assert res.summary["validation"]["top1"] is not None


def test_backbone_gets_a_lower_learning_rate(tmp_path, base_run, image_set, tiny_config):
    tr, te = _three_classes(image_set)
    cfg = tiny_config(tmp_path, epochs=1, name="ft2", finetune=str(base_run.run_dir / "best.pt"),
                      backbone_lr_mult=0.1, lr=0.2, schedule="constant", warmup=0)  # fmt: skip
    res = train(cfg, train_set=tr, eval_set=te)
    groups = load_checkpoint(res.run_dir / "last.pt")["optimizer"]["param_groups"]
    n_params = {}
    for g in groups:
        lr = round(g["base_lr"], 9)
        n_params[lr] = n_params.get(lr, 0) + len(g["params"])
    assert n_params == {0.2: 2, 0.02: 8}  # head: weight + bias; backbone: 4 layers' w + b


def test_finetune_from_a_plain_state_dict(tmp_path, image_set, tiny_config):
    """A torchvision-style file (just a state dict for the zoo's default 10-class head)."""
    from cnnlab.models import create

    torch.manual_seed(0)
    sd = create("lenet5").state_dict()
    torch.save(sd, tmp_path / "plain.pth")
    tr, te = _three_classes(image_set)
    cfg = tiny_config(tmp_path, epochs=0.5, name="ft3", finetune=str(tmp_path / "plain.pth"),
                      freeze_backbone=True)  # fmt: skip
    m = train(cfg, train_set=tr, eval_set=te).model
    assert torch.equal(m.features[0].weight.detach(), sd["features.0.weight"])
    assert m.classifier[-1].out_features == 3


def test_head_search_finds_aux_heads_too():
    from cnnlab.models import create

    g = create("googlenet", num_classes=7)
    heads = find_heads(g, 7)
    assert heads[0] == "fc" and {"aux1.fc2", "aux2.fc2"} <= set(heads)
    replace_head(g, 7, 4)
    assert g.fc.out_features == g.aux1.fc2.out_features == 4


def test_freeze_without_finetune_is_an_error(tmp_path, bars, tiny_config):
    tr, te = bars
    with pytest.raises(ConfigError, match="--finetune"):
        train(tiny_config(tmp_path, freeze_backbone=True), train_set=tr, eval_set=te)
