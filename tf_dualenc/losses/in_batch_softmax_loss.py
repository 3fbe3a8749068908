"""Keras loss class for the standard bidirectional in-batch sampled softmax."""

import keras

from tf_dualenc.losses.checks import check_flag, check_temperature
from tf_dualenc.losses.dual_encoder_loss import DualEncoderLoss
from tf_dualenc.losses.functional import contrastive_loss


@keras.saving.register_keras_serializable(package="tf_dualenc")
class InBatchSoftmaxLoss(DualEncoderLoss):
    """The paper's baseline: in-batch sampled softmax with no same-tower negatives.

        loss = mean_i −log( e^{s(q_i,p_i)} / Σ_j e^{s(q_i,p_j)} ) + [bidirectional] mean_i −log( e^{s(p_i,q_i)} / Σ_j e^{s(p_i,q_j)} )

    i.e. `contrastive_loss(..., same_tower="none")`. Hard negatives in `y_pred[:, 2:]` join the
    query→document denominator.

    Args:
        temperature: τ > 0.
        bidirectional: add the document→query term.
        mask_duplicates: read (query id, document id) from `y_true` and drop duplicates from denominators.

    Example:
    ```python
    model.compile(optimizer="adafactor", loss=InBatchSoftmaxLoss(temperature=0.01))
    ```
    """

    def __init__(self, temperature=0.01, bidirectional=True, mask_duplicates=False, name="in_batch_softmax_loss", **kwargs):
        super().__init__(mask_duplicates=mask_duplicates, name=name, **kwargs)
        self.temperature = check_temperature(temperature)
        self.bidirectional = check_flag("bidirectional", bidirectional)

    def embedding_loss(self, query_embeddings, document_embeddings, hard_negative_embeddings=None, query_ids=None,
                       document_ids=None):
        return contrastive_loss(query_embeddings, document_embeddings, temperature=self.temperature,
                                bidirectional=self.bidirectional, same_tower="none",
                                hard_negative_embeddings=hard_negative_embeddings,
                                **self.duplicate_ids(query_ids, document_ids))

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature, "bidirectional": self.bidirectional})
        return config
