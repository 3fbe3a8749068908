"""The dual-encoder losses by name: the one list of the names `TrainConfig.loss` accepts and the one way to build each
loss object from its settings, for the training loop, `DualEncoder.compile` and the pipeline's Trainer alike."""

import inspect

from tf_dualenc.losses.in_batch_softmax_loss import InBatchSoftmaxLoss
from tf_dualenc.losses.passage_centric_pair_loss import PairLoss
from tf_dualenc.losses.samtone_loss import SamToNeLoss

# The order is the one error messages list them in: the paper's loss first.
_LOSSES = {"samtone": SamToNeLoss, "in_batch": InBatchSoftmaxLoss, "pair": PairLoss}


def names():
    """The valid loss names, e.g. ("samtone", "in_batch", "pair")."""
    return tuple(_LOSSES)


def _loss_class(name):
    if name not in _LOSSES:
        raise ValueError(f"loss={name!r} (valid: {list(_LOSSES)})")
    return _LOSSES[name]


def settings(name):
    """The settings loss `name` takes (its class's constructor arguments but `name`), e.g. ("temperature", "alpha").

    Read from the constructor, so a setting added to a loss class is known here without a second list. They share
    `TrainConfig`'s field names, which is how the trainer picks a loss's settings out of the whole config.
    """
    parameters = inspect.signature(_loss_class(name).__init__).parameters.values()
    return tuple(p.name for p in parameters
                 if p.name not in ("self", "name") and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)


def get(name, **config):
    """Builds the Keras loss object that `name` stands for, with `config` as its settings.

    Args:
        name: one of `names()`: "samtone" (`SamToNeLoss`), "in_batch" (`InBatchSoftmaxLoss`) or "pair" (`PairLoss`).
        **config: that loss's settings (`settings(name)`), checked by the loss itself; omitted ones keep the class
            defaults (the paper's).

    Returns:
        A `DualEncoderLoss`, ready for `model.compile(loss=...)` or the training loop's `embedding_loss`.

    Raises:
        ValueError: an unknown name or setting (the message lists the valid ones) or a bad setting value.

    Example:
    ```python
    loss = tf_dualenc.losses.get("samtone", temperature=0.05, same_tower="both")
    model.compile(optimizer="adafactor", loss=loss)
    ```
    """
    valid = settings(name)
    unknown = sorted(set(config) - set(valid) - {"name"})
    if unknown:
        raise ValueError(f"loss={name!r} takes no setting(s) {unknown} (valid: {list(valid)})")
    return _LOSSES[name](**config)
