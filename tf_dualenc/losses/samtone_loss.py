"""Keras loss class for SamToNe (contrastive loss with same-tower negatives)."""

import keras

from tf_dualenc.losses.checks import check_flag, check_same_tower, check_temperature
from tf_dualenc.losses.dual_encoder_loss import DualEncoderLoss
from tf_dualenc.losses.functional import contrastive_loss


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
        self.temperature = check_temperature(temperature)
        self.bidirectional = check_flag("bidirectional", bidirectional)
        self.same_tower = check_same_tower(same_tower)

    def embedding_loss(self, query_embeddings, document_embeddings, hard_negative_embeddings=None, query_ids=None,
                       document_ids=None):
        return contrastive_loss(query_embeddings, document_embeddings, temperature=self.temperature,
                                bidirectional=self.bidirectional, same_tower=self.same_tower,
                                hard_negative_embeddings=hard_negative_embeddings,
                                **self.duplicate_ids(query_ids, document_ids))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"temperature": self.temperature, "bidirectional": self.bidirectional, "same_tower": self.same_tower}
        )
        return config
