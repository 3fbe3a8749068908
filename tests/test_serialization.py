"""One harness for every serialisable piece: get_config → from_config → same config (keras-hub style)."""

import pytest

import keras

from tf_dualenc.losses import InBatchSoftmaxLoss, PairLoss, SamToNeLoss
from tf_dualenc.models import MaskedMeanPooling, T5EncoderTower, build_t5_dual_encoder, t5_tower_config


def _round_trip(obj):
    config = obj.get_config()
    serialized = keras.saving.serialize_keras_object(obj)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(obj)
    assert revived.get_config() == config
    return revived


@pytest.mark.parametrize(
    "make",
    [
        lambda: SamToNeLoss(temperature=0.02, same_tower="both", bidirectional=False, mask_duplicates=True),
        lambda: InBatchSoftmaxLoss(temperature=0.1),
        lambda: PairLoss(alpha=0.3),
        lambda: MaskedMeanPooling(),
        lambda: T5EncoderTower(**t5_tower_config("tiny", vocabulary_size=50, dropout=0.2)),
    ],
    ids=["samtone", "in_batch", "pair", "pooling", "t5_tower"],
)
def test_get_config_round_trip(make):
    _round_trip(make())


@pytest.mark.parametrize("architecture", ["sde", "ade", "ade_spl"])
def test_dual_encoder_get_config_round_trip(t5_vocabulary, architecture):
    model = build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, architecture=architecture, embedding_dim=32)
    revived = _round_trip(model)
    assert revived.architecture == architecture
    assert (revived.query_tower is revived.document_tower) == (architecture == "sde")
    assert (revived.query_projection is revived.document_projection) == (architecture != "ade")


def test_cross_encoder_get_config_round_trip(t5_vocabulary):
    from tf_dualenc.models import build_t5_cross_encoder

    revived = _round_trip(build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=40))
    assert revived.pair_format == "joined" and revived.preprocessor.sequence_length == 40
