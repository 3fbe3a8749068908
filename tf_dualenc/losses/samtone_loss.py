"""Keras loss class for SamToNe (contrastive loss with same-tower negatives)."""

import keras

from tf_dualenc.losses.dual_encoder_loss import DualEncoderLoss
from tf_dualenc.losses.functional import SAME_TOWER_OPTIONS, contrastive_loss


@keras.saving.register_keras_serializable(package="tf_dualenc")
class SamToNeLoss(DualEncoderLoss):
    """Bidirectional in-batch softmax with same-tower negatives, for `compile`/`fit`.

    Wraps `tf_dualenc.losses.contrastive_loss` (see its docstring for the formula). The defaults are the
    paper's setting: τ = 0.01, bidirectional, other queries of the batch added to the query→document
    denominator.

    Args:
        temperature: τ > 0.
        bidirectional: add the document→query term.
        same_tower: "query" (paper), "document", "both" or "none".
        mask_duplicates: read (query id, document id) from `y_true` and drop duplicates from denominators.

    `y_pred` is [B, 2 + N, D] (query, document, hard negatives); see `DualEncoderLoss`.

    Example:
    ```python
    model.compile(optimizer=keras.optimizers.Adafactor(1e-3), loss=SamToNeLoss())
    ```

    Reference: Moiseev et al., Findings of ACL 2023.
    """

    def __init__(
        self,
        temperature=0.01,
        bidirectional=True,
        same_tower="query",
        mask_duplicates=False,
        name="samtone_loss",
        **kwargs,
    ):
        super().__init__(mask_duplicates=mask_duplicates, name=name, **kwargs)
        if same_tower not in SAME_TOWER_OPTIONS:
            raise ValueError(f"`same_tower` must be one of {SAME_TOWER_OPTIONS}; got {same_tower!r}.")
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; got {temperature!r}.")
        self.temperature = temperature
        self.bidirectional = bidirectional
        self.same_tower = same_tower

    def call(self, y_true, y_pred):
        q, p, hard, ids = self.unpack(y_true, y_pred)
        return contrastive_loss(
            q,
            p,
            temperature=self.temperature,
            bidirectional=self.bidirectional,
            same_tower=self.same_tower,
            hard_negative_embeddings=hard,
            **ids,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"temperature": self.temperature, "bidirectional": self.bidirectional, "same_tower": self.same_tower}
        )
        return config
