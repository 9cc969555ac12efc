"""cnnlab: the classic convolutional-network curriculum as working, measured software.

Parts (one sub-package each, see ARCHITECTURE.md):

- ``cnnlab.arithmetic``  pure layer arithmetic (no torch): sizes, params, MACs, memory, RF
- ``cnnlab.analysis``    per-layer summaries of real PyTorch models, conventions, comparisons
- ``cnnlab.models``      the classic model zoo (LeNet-5 ... DenseNet), faithful to the papers
- ``cnnlab.scratch``     the from-scratch NumPy engine of the lectures (forward + backward)
- ``cnnlab.data``        datasets, preprocessing, batch augmentation, test-time augmentation
- ``cnnlab.training``    training, evaluation, checkpoints, fine-tuning, recipes
- ``cnnlab.viz``         plots
- ``cnnlab.cli``         the thin ``cnnlab`` command on top

Heavy imports (torch) are deferred so that ``import cnnlab`` and ``cnnlab --help`` stay fast.
"""

from __future__ import annotations

from cnnlab.errors import CnnlabError

__version__ = "0.1.0"
__all__ = ["CnnlabError", "__version__", "summary"]


def summary(model, input_size, **kwargs):
    """Per-layer table of ``model`` at ``input_size`` (see :func:`cnnlab.analysis.summary`)."""
    from cnnlab.analysis import summary as _summary

    return _summary(model, input_size, **kwargs)
