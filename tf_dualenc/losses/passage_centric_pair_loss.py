"""Keras loss class for PAIR (passage-centric similarity), the paper's comparison."""

import keras

from tf_dualenc.losses.checks import check_alpha, check_temperature
from tf_dualenc.losses.dual_encoder_loss import DualEncoderLoss
from tf_dualenc.losses.functional import pair_loss


@keras.saving.register_keras_serializable(package="tf_dualenc")
class PairLoss(DualEncoderLoss):
    """PAIR loss: (1−α)·query-centric softmax + α·passage-centric term. See `tf_dualenc.losses.pair_loss`.

    Args:
        temperature: τ > 0.
        alpha: weight of the passage-centric term in [0, 1]; 0.1 as in the SamToNe paper's comparison.

    Hard negatives and ids are not part of PAIR's formulation; a `y_pred` with hard negatives is rejected.

    Example:
    ```python
    model.compile(optimizer="adafactor", loss=PairLoss(alpha=0.1))  # or tf_dualenc.losses.get("pair", alpha=0.1)
    ```

    Reference: Ren et al., Findings of ACL 2021.
    """

    def __init__(self, temperature=0.01, alpha=0.1, name="pair_loss", **kwargs):
        super().__init__(mask_duplicates=False, name=name, **kwargs)
        self.temperature = check_temperature(temperature)
        self.alpha = check_alpha(alpha)

    def embedding_loss(self, query_embeddings, document_embeddings, hard_negative_embeddings=None, query_ids=None,
                       document_ids=None):
        if hard_negative_embeddings is not None:
            raise ValueError("PairLoss does not use hard negatives; `y_pred` must be [batch, 2, dim].")
        return pair_loss(query_embeddings, document_embeddings, temperature=self.temperature, alpha=self.alpha)

    def get_config(self):
        config = super().get_config()
        config.pop("mask_duplicates")
        config.update({"temperature": self.temperature, "alpha": self.alpha})
        return config
