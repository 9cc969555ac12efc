"""Per-layer analysis of real PyTorch models: the lectures' table, conventions, comparisons.

>>> import torchvision
>>> from cnnlab.analysis import summary
>>> s = summary(torchvision.models.alexnet(), (3, 227, 227))
>>> s.totals["macs"]
714188480

Modules: trace.py (meta-tensor tracing), conventions.py (counting rules of the lectures and
of torchinfo/fvcore/ptflops/thop/flop_counter), receptive.py (receptive field through the
graph), render.py (table/markdown/csv/json/latex/html), compare.py (model vs model and the
lectures' built-in comparisons), resolve.py (model names and ``--input`` strings).
"""

from cnnlab.analysis.conventions import CONVENTIONS, Convention, get_convention
from cnnlab.analysis.summary import LayerRow, Summary, summary

__all__ = ["CONVENTIONS", "Convention", "LayerRow", "Summary", "get_convention", "summary"]
