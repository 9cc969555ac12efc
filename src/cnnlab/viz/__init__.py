"""Pictures of what a CNN computes (matplotlib Agg, written atomically; no display needed).

``apply_kernel`` (image filters), ``attribute`` (Captum's attributions) and the plots of a
training run; the rest lives in one module per concept (filters, features, attribute,
patches, heatmap, draw, report). ``attribute`` is bound here on purpose: ``cnnlab.viz.attribute``
is the function, its module is ``cnnlab.viz.attribute`` in ``sys.modules``.
"""

from cnnlab.viz.attribute import attribute
from cnnlab.viz.filters import apply_kernel
from cnnlab.viz.plots import plot_confusion, plot_history

__all__ = ["apply_kernel", "attribute", "plot_confusion", "plot_history"]
