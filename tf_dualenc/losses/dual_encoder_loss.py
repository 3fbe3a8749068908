"""Base class of the Keras loss wrappers: how `y_pred` and `y_true` carry the dual encoder's outputs."""

import keras
import tensorflow as tf

from tf_dualenc.losses.checks import check_flag


class DualEncoderLoss(keras.losses.Loss):
    """Unpacks a dual encoder's stacked embeddings for the functional losses.

    Layout (what `tf_dualenc.models.DualEncoder` returns when called on a training batch):

    - `y_pred`: float tensor [B, 2 + N, D]. `y_pred[:, 0]` holds the query embeddings, `y_pred[:, 1]` the
      positive document embeddings and `y_pred[:, 2:]` (when N > 0) each example's N hard negatives.
    - `y_true`: ignored unless `mask_duplicates=True`; then an integer or string tensor [B, 2] holding each
      pair's (query id, document id), used to drop duplicate pairs from the softmax denominators.

    `y_true` is deliberately not cast to `y_pred`'s dtype (Keras' default), so 64-bit and string ids survive.
    Sample weights are not supported: an in-batch softmax couples the whole batch.

    Subclasses implement `embedding_loss`, the loss of separate embeddings and ids. `compile`/`fit` reach it through
    `call` (which unpacks the stacked layout); the custom training loop, which holds the embeddings apart, calls it
    directly. Both paths therefore compute the same numbers from the one object that carries the settings.
    """

    def __init__(self, mask_duplicates=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.mask_duplicates = check_flag("mask_duplicates", mask_duplicates)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} does not support `sample_weight`: the in-batch softmax couples every "
                "example of the batch."
            )
        with tf.name_scope(self.name or type(self).__name__):
            return self.call(y_true, y_pred)

    def call(self, y_true, y_pred):
        q, p, hard, ids = self.unpack(y_true, y_pred)
        return self.embedding_loss(q, p, hard, **ids)

    def embedding_loss(self, query_embeddings, document_embeddings, hard_negative_embeddings=None, query_ids=None,
                       document_ids=None):
        """The loss of a batch held as separate tensors: [B, D] queries, [B, D] positive documents, optional
        [B, N, D] hard negatives and [B] ids. The ids are used only when `mask_duplicates` is True."""
        raise NotImplementedError(f"{type(self).__name__} must implement `embedding_loss`.")

    def duplicate_ids(self, query_ids, document_ids):
        """The id keyword arguments of the functional losses: the ids with `mask_duplicates`, none without."""
        return {"query_ids": query_ids, "document_ids": document_ids} if self.mask_duplicates else {}

    def unpack(self, y_true, y_pred):
        """Returns (query_embeddings, document_embeddings, hard_negative_embeddings or None, ids dict)."""
        y_pred = tf.convert_to_tensor(y_pred)
        if y_pred.shape.rank != 3 or (y_pred.shape[1] is not None and y_pred.shape[1] < 2):
            raise ValueError(
                f"{type(self).__name__} expects `y_pred` of shape [batch, 2 + num_hard_negatives, dim] "
                f"(query, positive document, hard negatives); got shape {y_pred.shape}."
            )
        hard = y_pred[:, 2:] if (y_pred.shape[1] is None or y_pred.shape[1] > 2) else None
        ids = {}
        if self.mask_duplicates:
            if y_true is None:
                raise ValueError(f"{type(self).__name__}(mask_duplicates=True) needs `y_true` ids of shape [batch, 2].")
            y_true = tf.convert_to_tensor(y_true)
            if y_true.shape.rank != 2 or (y_true.shape[1] is not None and y_true.shape[1] != 2):
                raise ValueError(
                    f"With mask_duplicates=True, `y_true` must be [batch, 2] (query id, document id); "
                    f"got shape {y_true.shape}."
                )
            ids = {"query_ids": y_true[:, 0], "document_ids": y_true[:, 1]}
        return y_pred[:, 0], y_pred[:, 1], hard, ids

    def get_config(self):
        config = super().get_config()
        config.update({"mask_duplicates": self.mask_duplicates})
        return config
