"""Fine-tuning and transfer learning (seed 000): reuse trained weights for a new task.

1. Start from trained weights -- a cnnlab checkpoint or a plain state dict (e.g. torchvision's).
2. Replace the head: the last ``Linear`` (or 1x1 classifier ``Conv2d``) that produces the class
   scores, plus any auxiliary heads (GoogLeNet's) -- found generically, no per-model table.
3. Train the head alone (``freeze_backbone``) or everything with the backbone at a lower
   learning rate (``backbone_lr_mult``), since the backbone already sits near a good optimum.
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import ConfigError

_HEADS = (nn.Linear, nn.Conv2d)


def _out_features(m: nn.Module) -> int:
    return m.out_features if isinstance(m, nn.Linear) else m.out_channels


def find_heads(model: nn.Module, num_classes: int) -> list[str]:
    """Qualified names of the classifier layers: the last Linear/Conv2d whose output size is
    ``num_classes`` (the main head) and every other such layer under an ``aux`` branch."""
    cands = [n for n, m in model.named_modules() if isinstance(m, _HEADS)]
    cands = [n for n in cands if _out_features(model.get_submodule(n)) == num_classes]
    if not cands:
        raise ConfigError(
            f"cannot find the classifier of {type(model).__name__}: no Linear/Conv2d layer "
            f"outputs {num_classes} classes",
            "fine-tuning needs a model whose last layer produces the class scores",
        )
    main = cands[-1]
    return [main] + [n for n in cands[:-1] if "aux" in n.lower()]


def classifier_params(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of the classifier layers (:func:`find_heads`), the class count read off
    the model's last Linear/Conv2d; none for a model without one. What Muon leaves alone."""
    last = [m for m in model.modules() if isinstance(m, _HEADS)]
    if not last:
        return []
    heads = find_heads(model, _out_features(last[-1]))
    return [p for n in heads for p in model.get_submodule(n).parameters()]


def _new_head(old: nn.Module, num_classes: int) -> nn.Module:
    bias = old.bias is not None
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=bias)
    else:
        new = nn.Conv2d(
            old.in_channels,
            num_classes,
            old.kernel_size,
            old.stride,
            old.padding,
            old.dilation,
            old.groups,
            bias,
        )
    return new.to(device=old.weight.device, dtype=old.weight.dtype)


def replace_head(model: nn.Module, old_classes: int, num_classes: int) -> list[str]:
    """Swap every head (see :func:`find_heads`) for a freshly initialised one of
    ``num_classes`` outputs; returns the replaced names."""
    names = find_heads(model, old_classes)
    for name in names:
        parent, _, leaf = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, leaf, _new_head(owner.get_submodule(leaf), num_classes))
    return names


def split_params(model: nn.Module, head_names: list[str]):
    """(backbone, head) parameter lists."""
    head_ids = {id(p) for n in head_names for p in model.get_submodule(n).parameters()}
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    head = [p for p in model.parameters() if id(p) in head_ids]
    return backbone, head


def freeze_backbone(model: nn.Module, head_names: list[str]) -> list[nn.Module]:
    """``requires_grad=False`` for everything outside the heads. Returns the backbone's norm
    layers: the trainer keeps them in eval mode, or their running statistics would still
    drift and the "frozen" backbone would change."""
    head_mods = {id(m) for n in head_names for m in model.get_submodule(n).modules()}
    backbone, _ = split_params(model, head_names)
    for p in backbone:
        p.requires_grad_(False)
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    return [m for m in model.modules() if isinstance(m, norms) and id(m) not in head_mods]


def load_start_weights(model: nn.Module, state: dict, source: str) -> None:
    """Load a backbone's weights, tolerating only a differently sized head."""
    own = model.state_dict()
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in skipped]
    if missing or unexpected:
        raise ConfigError(
            f"weights in {source} do not fit this model: "
            f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
            f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}",
            "fine-tune from a checkpoint of the same model (--finetune needs the same MODEL)",
        )
