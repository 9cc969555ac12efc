"""Correctness on real graphs: repeated modules, functional ops, containers, coverage, meta."""

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis import summary
from cnnlab.errors import ConfigError, ShapeError


class Twice(nn.Module):
    """The same conv applied twice, then global pooling written as a functional mean."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.conv(self.conv(x))
        return self.head(x.mean((2, 3)))


def test_module_called_twice_gives_two_rows_and_counts_params_once():
    s = summary(Twice(), (8, 10, 10))
    first, second = s.layer("conv", 1), s.layer("conv", 2)
    assert [r.name for r in s.layers] == ["conv", "conv", "(mean)", "head"]
    assert first.params == 8 * 8 * 9 + 8 and second.params == 0
    assert first.macs == second.macs == 8 * 10 * 10 * 8 * 9  # both calls do the work
    assert s.totals["params"] == sum(p.numel() for p in Twice().parameters())
    assert s.totals["macs"] == 2 * first.macs + 8 * 4
    # the functional mean is a global average pool: one op per input element, RF = whole map
    assert s.layer("(mean)").flops == 8 * 10 * 10
    assert second.receptive_field == [5, 5]  # two 3x3 convs
    assert s.layer("(mean)").receptive_field == [5 + 9, 5 + 9]  # rf + (10 - 1) * jump


class Functional(nn.Module):
    """Everything written with functionals inside one module with parameters of its own."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.b = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        y = F.relu(F.conv2d(x, self.w, self.b, padding=1))
        z = torch.cat([y, y], 1)
        return torch.flatten(z + z, 1)


def test_functional_ops_are_rows_and_counted():
    s = summary(Functional(), (3, 8, 8))
    names = [r.name for r in s.layers]
    assert names == ["(conv2d)", "(relu)", "(cat)", "(add)", "(flatten)"]
    conv = s.layer("(conv2d)")
    assert (conv.weights, conv.bias, conv.macs) == (108, 4, 4 * 8 * 8 * 27)
    assert conv.kernel == [3, 3] and conv.filters == 4
    assert s.layer("(relu)").flops == 4 * 8 * 8
    assert s.layer("(cat)").flops == 0 and s.layer("(cat)").output_shape == [8, 8, 8]
    assert s.layer("(add)").flops == 8 * 8 * 8  # the x + f(x)-style add is counted
    assert s.layer("(flatten)").output_shape == [512]
    assert s.totals["params"] == 112 and s.coverage == 1.0


def test_residual_add_counted_in_torchvision_resnet(tv_meta):
    s = summary(tv_meta("resnet18"), (3, 64, 64))
    add = s.layer("layer1.0 (add)")
    assert add.type == "Tensor.add" and add.flops == 64 * 16 * 16
    assert s.layer("layer1.0.relu", 2).input_shape == [64, 16, 16]  # relu module reused
    assert len([r for r in s.layers if r.name.endswith("(add)")]) == 8
    # fvcore skips residual adds: the same trace shows what it leaves out
    fv = s.with_convention("fvcore")
    assert fv.not_counted["aten.add_"] == 8 and fv.coverage < 1


def test_nested_containers_not_double_counted():
    inner = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3)), nn.Sequential(nn.Sequential(nn.ReLU()))
    )
    s = summary(nn.Sequential(inner, nn.Sequential()), (3, 6, 6))
    assert [r.name for r in s.layers] == ["0.0.0", "0.1.0.0", "1"]  # the empty one is a leaf
    assert s.totals["macs"] == 4 * 4 * 4 * 27
    assert s.totals["params"] == 4 * 27 + 4


class Cumsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x).cumsum(1)


def test_op_without_rule_is_listed_with_coverage():
    s = summary(Cumsum(), (3, 4, 4))
    assert dict(s.not_counted) == {"aten.cumsum": 1}
    assert s.coverage == pytest.approx(0.5)
    assert s.layer("(cumsum)").not_counted == {"aten.cumsum": 1}
    text = s.to_text()
    assert "coverage: 50.0% of ops counted; not counted: aten.cumsum x1" in text
    assert s.to_dict()["not_counted"] == [{"op": "aten.cumsum", "count": 1}]


def test_huge_input_allocates_nothing_and_model_untouched(tv_meta):
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()).train()
    before = [p.clone() for p in model.parameters()]
    start = time.perf_counter()
    s = summary(model, (3, 2160, 3840), batch_size=64)  # 64 x 4K frames: ~34 GB of activations
    assert time.perf_counter() - start < 5
    assert s.totals["activation_bytes"] == 3 * 64 * 16 * 2160 * 3840 * 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model.training and all(p.device.type == "cpu" for p in model.parameters())
    r50 = summary(tv_meta("resnet50"), (3, 2160, 3840))
    assert r50.totals["activation_bytes"] > 20 * 2**30


def test_dtype_and_batch_size_scale():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(2))
    m(torch.zeros(1, 3, 6, 6))
    s32 = summary(m, (3, 6, 6))
    s16 = summary(m, (3, 6, 6), dtype="float16", batch_size=4)
    assert s16.totals["activation_bytes"] * 2 == s32.totals["activation_bytes"] * 4
    assert s16.totals["macs"] == 4 * s32.totals["macs"]
    assert s16.totals["params"] == s32.totals["params"]


def test_bad_arguments_raise_clear_errors():
    m = nn.Conv2d(3, 4, 3)
    with pytest.raises(ConfigError, match="unknown convention"):
        summary(m, (3, 8, 8), convention="fvcor")
    with pytest.raises(ConfigError, match="positive"):
        summary(m, (3, 0, 8))
    with pytest.raises(ConfigError, match="float"):
        summary(m, (3, 8, 8), dtype="int8")


def test_layer_failure_names_layer_shapes_and_fitting_input():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.Flatten(), nn.Linear(8 * 15 * 15, 10))
    with pytest.raises(ShapeError) as e:
        summary(net, (3, 40, 40))
    msg = str(e.value)
    assert "layer 2 (Linear 1800->10) got input 2888" in msg
    assert "too large for this head" in msg
    assert e.value.hint.startswith("use --input 3x32x32")
    with pytest.raises(ShapeError, match="takes a 3-dimensional input"):
        summary(nn.Conv2d(3, 4, 3), (3, 22))


class Decoder(nn.Module):
    """Grouped, dilated, transposed and 1-D convolutions plus an upsampling."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2, groups=2)
        self.up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.seq = nn.Conv1d(4, 6, 5)

    def forward(self, x):
        y = self.up(self.down(x))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        return self.seq(y.flatten(2))


def test_unusual_convolutions_match_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    model = Decoder()
    s = summary(model, (4, 16, 16))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.zeros(1, 4, 16, 16))
    assert 2 * s.totals["macs"] == fc.get_total_flops()
    down, up = s.layer("down"), s.layer("up")
    assert (down.groups, down.dilation, down.output_shape) == (2, [2, 2], [8, 8, 8])
    assert up.output_shape == [4, 16, 16] and up.macs == 8 * 8 * 8 * 4 * 16
    assert down.receptive_field == [5, 5] and down.jump == [2, 2]
    assert up.jump == [1, 1]  # the transposed conv undoes the stride
    assert s.layer("(interpolate)").jump == [0.5, 0.5]
    assert s.coverage == 1.0


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y * 2 if y.sum().item() > 1e9 else y  # .item() cannot run on meta tensors


def test_model_that_needs_real_values_is_traced_on_cpu_with_a_note():
    s = summary(DataDependent(), (3, 8, 8))
    assert s.notes == ["traced on the CPU: this model does not run on meta tensors"]
    assert s.layer("conv").macs == 4 * 6 * 6 * 27


def test_summary_on_the_cpu_equals_the_meta_trace():
    import cnnlab
    from cnnlab.errors import ConfigError
    from cnnlab.models import create

    model = create("resnet18")
    meta = cnnlab.summary(model, (3, 64, 64))
    cpu = cnnlab.summary(model, (3, 64, 64), device="cpu")
    assert [(r.name, r.output_shape, r.macs, r.params) for r in cpu.layers] == [
        (r.name, r.output_shape, r.macs, r.params) for r in meta.layers
    ]
    assert cpu.totals == meta.totals and cpu.layers
    with pytest.raises(ConfigError, match="unknown device 'cuda:7'"):
        cnnlab.summary(model, (3, 64, 64), device="cuda:7")
