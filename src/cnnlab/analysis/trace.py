"""Run a model once on meta tensors and record every operation, grouped into table rows.

Nothing real is allocated: parameters and buffers are swapped for meta tensors with
``torch.func.functional_call`` (the user's model is left untouched), the input is a meta
tensor, and the forward pass runs under two interposers:

- a ``TorchFunctionMode`` sees each Python-level call (``F.conv2d``, ``torch.cat``,
  ``x + y``, ``torch.flatten``) and so gives functional ops a readable name;
- a ``TorchDispatchMode`` sees the ATen ops each call lowers to (``aten.convolution``,
  ``aten.addmm``, ...), which is what the counting rules (conventions.py) read, and carries
  the receptive field of every tensor from op to op (receptive.py).

Module hooks keep a stack of the modules being run. A call of a leaf module (one without
children) becomes one row with all the ops inside it; an op run directly in a module with
children (a residual ``out += identity``, a ``torch.cat`` of Inception branches, the
``torch.flatten`` in ``AlexNet.forward``) becomes a row of its own, ``"layer1.0 (add)"``.
Containers such as ``nn.Sequential`` run no ops themselves, so nothing is counted twice.
``nn.MultiheadAttention`` is one row too although it has a child (``out_proj``, whose weight
it passes to ``F.multi_head_attention_forward`` without calling it): the tools that price it
(ptflops) price the whole call.

The model runs in eval mode unless ``mode="train"`` (batch norm then normalises with the
batch statistics, dropout draws masks); either way the user's model keeps its own mode.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from cnnlab.analysis import receptive
from cnnlab.analysis.meta_shapes import FAST_SHAPES

_TRIVIAL_FUNCS = {  # Python-level calls that never make a row of their own
    "dim",
    "size",
    "numel",
    "__len__",
    "__get__",
    "__format__",
    "__repr__",
    "__bool__",
    "__index__",
    "__int__",
    "__float__",
    "__iter__",
    "stride",
    "is_contiguous",
    "element_size",
}
_OPERATOR_NAMES = {
    "iadd": "add",
    "radd": "add",
    "isub": "sub",
    "rsub": "sub",
    "imul": "mul",
    "rmul": "mul",
    "itruediv": "div",
    "truediv": "div",
    "rtruediv": "div",
    "matmul": "matmul",
    "getitem": "getitem",
}


@dataclass
class Op:
    """One ATen op: its name (``aten.convolution``), arguments and output, all meta tensors."""

    name: str
    args: tuple
    kwargs: dict
    out: object
    # (name, serial) of the fused call it belongs to (scaled_dot_product_attention): some
    # tools see that call as one op they cannot price, not the matmuls it is made of
    within: tuple | None = None


# Functions that lower to ordinary ATen ops here but are one opaque op to a tracing tool.
# A function mode does not see calls made inside another call (F.multi_head_attention_forward
# calls this one), so during a trace the name in torch.nn.functional is wrapped instead.
_FUSED = ("scaled_dot_product_attention",)


@dataclass
class Group:
    """One Python-level call (``F.relu``, ``torch.cat``) and the ATen ops it lowered to."""

    fn: object  # the function object the TorchFunctionMode saw, or None for bare ATen ops
    fn_name: str | None  # "relu", "cat", "add", ...
    fn_label: str | None  # "F.relu", "torch.cat", "Tensor.add"
    ops: list[Op] = field(default_factory=list)
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Call:
    """One row of the table: a leaf-module call, or a functional call outside any leaf."""

    name: str  # as in model.named_modules(); functional rows: "layer1.0 (add)"
    module: nn.Module | None  # the user's module (leaf rows), else None
    module_name: str  # the module that ran it ("" for the model itself)
    type: str  # "Conv2d", or "F.relu"/"torch.cat"/"Tensor.add" for functional rows
    call_index: int = 1  # 1 for the first call of a module, 2 for its second...
    groups: list[Group] = field(default_factory=list)
    input_shape: tuple | None = None  # with the batch dimension
    input_shapes: tuple = ()  # every tensor argument of a module call (q, k, v of attention)
    output_shape: tuple | None = None
    output_dtype: torch.dtype | None = None
    output_numel: int = 0
    rf: tuple | None = None  # per spatial dim, from receptive.py
    jump: tuple | None = None
    params_used: list[str] = field(default_factory=list)  # parameter names first used here
    bias_params: set[str] = field(default_factory=set)  # of which used as a bias

    @property
    def input_numel(self) -> int:
        return math.prod(self.input_shape) if self.input_shape else 0

    @property
    def ops(self):
        return [op for g in self.groups for op in g.ops]


@dataclass
class Trace:
    calls: list[Call]
    input_shape: tuple
    dtype: torch.dtype
    mode: str = "eval"
    # A custom model without children is split into its functional ops; torchinfo still
    # sees it as one leaf layer, so its call (no ops of its own) is kept here.
    root: Call | None = None
    ran: set[int] = field(default_factory=set)  # id() of every module whose forward ran


MODES = ("eval", "train")
# Modules with children that run as one unit: their children are never called as modules.
_ATOMIC = (nn.MultiheadAttention,)


class TraceError(Exception):
    """The forward pass failed; carries the innermost module being run and its input."""

    def __init__(self, error: BaseException, module_name, module, input_shapes):
        super().__init__(str(error))
        self.error = error
        self.module_name = module_name
        self.module = module
        self.input_shapes = input_shapes


def _first_tensor(obj):
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (list, tuple)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    if isinstance(obj, dict):
        return _first_tensor(list(obj.values()))
    return None


@functools.cache
def _fn_label(func) -> tuple[str, str]:
    name = getattr(func, "__name__", None) or type(func).__name__
    bare = name.strip("_")
    bare = _OPERATOR_NAMES.get(bare, bare)
    module = getattr(func, "__module__", None)
    if module is None or "Tensor" in getattr(func, "__qualname__", ""):
        label = f"Tensor.{bare}"
    elif module.startswith("torch.nn.functional"):
        label = f"F.{bare}"
    else:
        label = f"torch.{bare}"
    return bare, label


class _Tracer(TorchFunctionMode):
    """Groups ATen ops under the Python call and the module that issued them."""

    def __init__(self, names, param_names, direct_params, leaves):
        super().__init__()
        self.leaves = leaves  # ids of modules without children
        self.names = names  # id(module) -> name in model.named_modules()
        self.param_names = param_names  # id(meta tensor) -> canonical parameter name
        self.direct_params = direct_params  # id(module) -> its own parameters' names
        self.stack: list[tuple[str, nn.Module, tuple]] = []  # (name, module, input shapes)
        self.calls: list[Call] = []
        self.open: dict[int, Call] = {}  # id(module) -> its row while it runs (leaf only)
        self.counts: dict[str, int] = {}
        self.group: Group | None = None  # the Python-level call being run
        self.rf = receptive.Tracker()
        self.used_params: set[str] = set()
        self.within: tuple | None = None  # the fused call being run (see Op.within)
        self.fused_calls = 0
        self.ran: set[int] = set()
        self.root: Call | None = None  # the childless custom root, see Trace.root
        self.split_root: int | None = None  # id() of that root

    def fused(self, name: str, func):
        """``func`` wrapped so that the ATen ops it runs are marked as one fused call."""

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if self.within is not None:
                return func(*args, **kwargs)
            self.fused_calls += 1
            self.within = (name, self.fused_calls)
            try:
                return func(*args, **kwargs)
            finally:
                self.within = None

        return wrapper

    # -- module hooks -----------------------------------------------------------------------
    def pre_hook(self, module, args):
        name = self.names.get(id(module), type(module).__name__)
        shapes = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
        self.stack.append((name, module, shapes))
        self.ran.add(id(module))
        if id(module) == self.split_root and self.root is None:
            self.root = Call("(model)", module, "", type(module).__name__)
            self.root.input_shape = shapes[0] if shapes else None
        if id(module) in self.leaves:  # a leaf module: one row per call
            row = name or type(module).__name__  # the model itself is a single layer
            self.counts[row] = self.counts.get(row, 0) + 1
            call = Call(row, module, name, type(module).__name__, self.counts[row])
            call.input_shape = shapes[0] if shapes else None
            call.input_shapes = shapes
            self.open[id(module)] = call
            self.calls.append(call)

    def post_hook(self, module, args, output):
        self.stack.pop()
        if self.root is not None and module is self.root.module and not self.stack:
            self._finish(self.root, output)
        call = self.open.pop(id(module), None)
        if call is not None:
            self._finish(call, output)
            for pname in self.direct_params.get(id(module), ()):
                if pname not in self.used_params:  # a module called twice counts once
                    self.used_params.add(pname)
                    call.params_used.append(pname)

    def _finish(self, call: Call, output):
        t = _first_tensor(output)
        if t is not None:
            call.output_shape = tuple(t.shape)
            call.output_dtype = t.dtype
            call.output_numel = t.numel()
            call.rf, call.jump = self.rf.get(t)

    def _leaf_call(self) -> Call | None:
        if self.stack:
            return self.open.get(id(self.stack[-1][1]))
        return None

    # -- Python-level calls -----------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _TRIVIAL_FUNCS or self.group is not None:
            return func(*args, **kwargs)
        bare, label = _fn_label(func)
        group = Group(func, bare, label, args=args, kwargs=kwargs)
        self.group = group
        try:
            out = func(*args, **kwargs)
        finally:
            self.group = None
        if group.ops:
            self._place(group, args, out)
        return out

    def _place(self, group: Group, args, out):
        leaf = self._leaf_call()
        if leaf is not None:
            leaf.groups.append(group)
            return
        owner = self.stack[-1][0] if self.stack else ""
        fn = group.fn_name or group.ops[0].name.split(".")[-1]
        if fn == "fn":  # boolean_dispatch wrappers (F.max_pool2d): name it by its ATen op
            fn = group.ops[0].name.split(".")[-1]
        row_name = f"{owner} ({fn})" if owner else f"({fn})"
        self.counts[row_name] = self.counts.get(row_name, 0) + 1
        call = Call(row_name, None, owner, group.fn_label or fn, self.counts[row_name])
        call.groups.append(group)
        first = _first_tensor(args)
        call.input_shape = tuple(first.shape) if first is not None else None
        for op in group.ops:  # parameters used by a functional op in a non-leaf module
            bias_at = {"aten.convolution": 2, "aten.addmm": 0}.get(op.name)
            for i, a in enumerate(op.args):
                pname = self.param_names.get(id(a)) if isinstance(a, torch.Tensor) else None
                if pname is not None and pname not in self.used_params:
                    self.used_params.add(pname)
                    call.params_used.append(pname)
                    if i == bias_at:
                        call.bias_params.add(pname)
        self._finish(call, out)
        self.calls.append(call)

    # -- ATen ops (called from the dispatch mode) -------------------------------------------
    def on_op(self, name: str, args, kwargs, out):
        op = Op(name, args, kwargs, out, self.within)
        self.rf.on_op(op)
        if self.group is not None:
            self.group.ops.append(op)
        else:  # an ATen op issued outside any Python-level call
            group = Group(None, None, None, [op], args, kwargs)
            self._place(group, args, out)


def _batch_norm_shapes(func, args, kwargs):
    """Outputs of an inference batch norm on meta tensors, without running PyTorch's Python
    decomposition (14 ms a call: it would dominate the trace of a ResNet)."""
    x = args[0]
    empty = x.new_empty((0,))
    return x.new_empty(x.shape), empty, x.new_empty((0,))


def _conv_shapes(func, args, kwargs):
    """Output of a convolution from N' = (N + 2P - D(K-1) - 1)//S + 1, or of a transposed one
    from N' = (N - 1)S - 2P + D(K-1) + output_padding + 1; None (run the real meta kernel,
    which raises PyTorch's own error) when anything is off."""
    x, w, _, stride, padding, dilation, transposed, out_pad, groups = args[:9]
    n = w.dim() - 2
    c_in = w.shape[0] if transposed else w.shape[1] * groups
    if x.dim() != n + 2 or x.shape[1] != c_in:
        return None
    if len(stride) != n or len(padding) != n or len(dilation) != n or len(out_pad) != n:
        return None
    out = []
    for size, k, s, p, d, op in zip(x.shape[2:], w.shape[2:], stride, padding, dilation, out_pad):
        if transposed:
            o = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        else:
            o = (size + 2 * p - d * (k - 1) - 1) // s + 1
        if o < 1:
            return None
        out.append(o)
    c_out = w.shape[1] * groups if transposed else w.shape[0]
    return x.new_empty((x.shape[0], c_out, *out))


# ATen ops whose meta kernels are slow Python decompositions (and import torch._dynamo on
# first use, see meta_shapes.py): shapes computed directly.
_FAST_META = {
    torch.ops.aten._native_batch_norm_legit_no_training.default: _batch_norm_shapes,
    torch.ops.aten.native_batch_norm.default: _batch_norm_shapes,
    torch.ops.aten.convolution.default: _conv_shapes,
    **FAST_SHAPES,
}
_NATIVE_BN = torch.ops.aten.native_batch_norm.default


class _Dispatch(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # PyTorch wraps a mode's __torch_dispatch__ in torch._dynamo.disable unless this says
        # no; the wrapper's first call imports torch._dynamo (1.5-4 s here), and a summary
        # never runs under torch.compile, so there is nothing for it to disable
        return False

    def __init__(self, tracer: _Tracer, meta: bool):
        super().__init__()
        self.tracer = tracer
        self.meta = meta

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        fast = _FAST_META.get(func) if self.meta else None
        out = None
        if fast is not None and not (func is _NATIVE_BN and args[5]):  # eval batch norm only
            out = fast(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        self.tracer.on_op(str(func.overloadpacket), args, kwargs, out)
        return out


def _meta_state(model: nn.Module, dtype: torch.dtype, device) -> dict[str, torch.Tensor]:
    """The tensors the trace runs with: shapes only on the meta device. On a real device the
    model's own values, or for a meta-built model fixed ones (uniform in [0, 0.01), seed 0),
    never uninitialised memory: a data-dependent model (a detector's proposal count) must
    count the same on every run."""
    state = {}
    gen = torch.Generator().manual_seed(0)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        dt = dtype if t.is_floating_point() else t.dtype
        if device == "meta":
            state[name] = torch.empty(t.shape, dtype=dt, device=device)
        elif not t.is_meta:
            state[name] = t.detach().to(device=device, dtype=dt)
        elif dt.is_floating_point:
            state[name] = (torch.rand(t.shape, generator=gen) * 0.01).to(device=device, dtype=dt)
        else:
            state[name] = torch.zeros(t.shape, dtype=dt, device=device)
    return state


def trace(
    model: nn.Module,
    input_shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: str = "meta",
    mode: str = "eval",
) -> Trace:
    """Run ``model`` on an input of ``input_shape`` (batch included) and record every op.

    ``mode`` is ``"eval"`` or ``"train"``: the mode the model runs in (the model's own
    mode is restored afterwards). On failure raises :class:`TraceError` naming the
    innermost module that was running.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    names, direct, leaves, modes = {}, {}, set(), []
    split_root = None
    canonical = {id(p): n for n, p in model.named_parameters()}  # tied weights: one name
    inside_atomic: set[int] = set()
    for name, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), name)
        modes.append((m, m.training))
        if id(m) in inside_atomic:
            continue
        direct[id(m)] = [canonical[id(p)] for p in m._parameters.values() if p is not None]
        if isinstance(m, _ATOMIC):  # one row, owning its children's parameters too
            leaves.add(id(m))
            direct[id(m)] = [canonical[id(p)] for p in m.parameters()]
            inside_atomic.update(id(c) for c in m.modules() if c is not m)
        # a module without children is one row per call; a custom model without children is
        # itself split into its functional ops (the root of a plain nn.Conv2d stays one row)
        elif not m._modules and (m is not model or type(m).__module__.startswith("torch.nn")):
            leaves.add(id(m))
        elif not m._modules:
            split_root = id(m)
    state = _meta_state(model, dtype, device)
    pnames = set(canonical.values())
    param_names = {id(t): n for n, t in state.items() if n in pnames}
    tracer = _Tracer(names, param_names, direct, leaves)
    tracer.split_root = split_root
    x = torch.zeros(input_shape, dtype=dtype, device=device)
    tracer.rf.start(x)
    handles = [
        nn.modules.module.register_module_forward_pre_hook(tracer.pre_hook),
        nn.modules.module.register_module_forward_hook(tracer.post_hook),
    ]
    model.train(mode == "train")
    originals = {n: getattr(F, n) for n in _FUSED}
    for n, func in originals.items():
        setattr(F, n, tracer.fused(n, func))
    try:
        with torch.no_grad(), tracer, _Dispatch(tracer, device == "meta"):
            torch.func.functional_call(model, state, (x,), strict=False, tie_weights=True)
    except Exception as e:
        name, module, shapes = tracer.stack[-1] if tracer.stack else ("", model, (input_shape,))
        raise TraceError(e, name, module, shapes) from e
    finally:
        for n, func in originals.items():
            setattr(F, n, func)
        for h in handles:
            h.remove()
        for m, was_training in modes:
            m.training = was_training
    return Trace(tracer.calls, tuple(input_shape), dtype, mode, tracer.root, tracer.ran)
