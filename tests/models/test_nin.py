"""Network in Network: mlpconv blocks, global average pooling, both released models."""

import torch

from cnnlab.models import create
from cnnlab.models.nin import MLPConv


def test_cifar_model_params_and_sizes(n_params, meta_model):
    # The authors' CIFAR-10 model (cuda-convnet / Caffe release of Lin et al. 2013):
    # 14,592 + 30,880 + 15,456 | 460,992 + 37,056 + 37,056 | 331,968 + 37,056 + 1,930.
    m = meta_model("nin_cifar")
    blocks = [b for b in m.features if isinstance(b, MLPConv)]
    assert [n_params(b) for b in blocks] == [60_928, 535_104, 370_954]
    assert n_params(m) == 966_986
    x = torch.zeros(1, 3, 32, 32, device="meta")
    sizes = []
    with torch.no_grad():
        for layer in m.features:
            x = layer(x)
            sizes.append(x.shape[-1])
    assert sizes == [32, 16, 16, 16, 8, 8, 8]  # ceil-mode pools: 32 -> 16 -> 8


def test_imagenet_model_params_and_sizes(n_params, meta_model):
    # Caffe Model Zoo NIN-Imagenet: 224 -> 54 -> 27 -> 13 -> 6 -> global average.
    m = meta_model("nin")
    assert n_params(m) == 7_595_176
    x = torch.zeros(1, 3, 224, 224, device="meta")
    with torch.no_grad():
        sizes = [(x := layer(x)).shape[-1] for layer in m.features]
    assert sizes == [54, 27, 27, 13, 13, 6, 6, 6]


def test_mlpconv_is_conv_then_two_1x1():
    b = MLPConv(3, (8, 6, 4), 3, padding=1)
    convs = [l for l in b if isinstance(l, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (1, 1), (1, 1)]
    assert sum(isinstance(l, torch.nn.ReLU) for l in b) == 3


@torch.no_grad()
def test_forward_shapes_and_gap_head(meta_shape):
    m = create("nin_cifar", num_classes=100).eval()
    x = torch.randn(2, 3, 32, 32)
    out = m(x)
    assert out.shape == (2, 100)
    # The logits are the class maps averaged: no fully connected layer anywhere.
    assert torch.allclose(out, m.features(x).mean((2, 3)), atol=1e-6)
    assert not any(isinstance(l, torch.nn.Linear) for l in m.modules())
    assert (out >= 0).all()  # final_relu=True, as the released models
    signed = create("nin_cifar", final_relu=False).eval()
    assert not isinstance(list(signed.features[-1])[-1], torch.nn.ReLU)
    assert meta_shape("nin", (3, 224, 224)) == (2, 1000)
    assert meta_shape("nin", (3, 224, 224), num_classes=10) == (2, 10)
