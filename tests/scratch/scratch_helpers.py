"""Helpers for the scratch-engine tests: NHWC numpy <-> NCHW torch."""

import numpy as np


def nchw(x):
    """NHWC numpy -> NCHW float tensor that requires grad."""
    import torch

    return torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)


def nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def torch_kernel(w):
    """[kh, kw, xchn, ychn] -> PyTorch's [ychn, xchn, kh, kw]."""
    import torch

    return torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), requires_grad=True)
