"""The Hugging Face T5 converter against an independent NumPy T5 encoder (and transformers when installed)."""

import json

import numpy as np
import pytest

from tf_dualenc.models.hf_t5_converter import t5_tower_from_huggingface

CONFIG = {
    "model_type": "t5", "vocab_size": 97, "d_model": 32, "d_ff": 48, "d_kv": 8, "num_heads": 4, "num_layers": 2,
    "num_decoder_layers": 2, "feed_forward_proj": "gated-gelu", "layer_norm_epsilon": 1e-6, "dropout_rate": 0.0,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "is_encoder_decoder": True,
    "tie_word_embeddings": False, "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1,
}


def make_checkpoint(folder, config=CONFIG, seed=0):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    d, ff, inner = config["d_model"], config["d_ff"], config["num_heads"] * config["d_kv"]

    def w(*shape, scale=0.3):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    tensors = {"shared.weight": w(config["vocab_size"], d, scale=1.0), "encoder.final_layer_norm.weight": 1 + w(d, scale=0.1)}
    tensors["encoder.embed_tokens.weight"] = tensors["shared.weight"]
    for i in range(config["num_layers"]):
        p = f"encoder.block.{i}.layer."
        for n in "qkv":
            tensors[p + f"0.SelfAttention.{n}.weight"] = w(inner, d)
        tensors[p + "0.SelfAttention.o.weight"] = w(d, inner)
        if i == 0:
            tensors[p + "0.SelfAttention.relative_attention_bias.weight"] = w(32, config["num_heads"], scale=1.0)
        tensors[p + "0.layer_norm.weight"] = 1 + w(d, scale=0.1)
        tensors[p + "1.DenseReluDense.wi_0.weight"] = w(ff, d)
        tensors[p + "1.DenseReluDense.wi_1.weight"] = w(ff, d)
        tensors[p + "1.DenseReluDense.wo.weight"] = w(d, ff)
        tensors[p + "1.layer_norm.weight"] = 1 + w(d, scale=0.1)
    folder.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared memory; the copy mirrors how HF writes tied tensors.
    tensors["encoder.embed_tokens.weight"] = tensors["shared.weight"].copy()
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    return tensors


def _bucket(relative, num_buckets=32, max_distance=128):
    num_buckets //= 2
    out = (relative > 0).astype(np.int64) * num_buckets
    relative = np.abs(relative)
    max_exact = num_buckets // 2
    large = max_exact + (np.log(np.maximum(relative, 1) / max_exact) / np.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(np.int64)
    return out + np.where(relative < max_exact, relative, np.minimum(large, num_buckets - 1))


def numpy_t5_encoder_mean_pooled(t, config, ids, mask):
    """T5 v1.1 encoder from the paper: pre-RMSNorm, unscaled attention with bucketed relative bias, GEGLU."""
    t = {k: v.astype(np.float64) for k, v in t.items()}
    heads, dkv, eps = config["num_heads"], config["d_kv"], config["layer_norm_epsilon"]

    def rms(x, w):
        return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * w

    def gelu_tanh(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    batch, length = ids.shape
    x = t["encoder.embed_tokens.weight"][ids]
    positions = np.arange(length)
    bias = t["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"][_bucket(positions[None] - positions[:, None])]
    bias = bias.transpose(2, 0, 1)[None] + np.where(mask[:, None, None, :] > 0, 0.0, -1e9)
    for i in range(config["num_layers"]):
        p = f"encoder.block.{i}.layer."
        h = rms(x, t[p + "0.layer_norm.weight"])

        def heads_of(name):
            return (h @ t[p + f"0.SelfAttention.{name}.weight"].T).reshape(batch, length, heads, dkv).transpose(0, 2, 1, 3)

        q, k, v = heads_of("q"), heads_of("k"), heads_of("v")
        scores = q @ k.transpose(0, 1, 3, 2) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, heads * dkv)
        x = x + context @ t[p + "0.SelfAttention.o.weight"].T
        h = rms(x, t[p + "1.layer_norm.weight"])
        inner = gelu_tanh(h @ t[p + "1.DenseReluDense.wi_0.weight"].T) * (h @ t[p + "1.DenseReluDense.wi_1.weight"].T)
        x = x + inner @ t[p + "1.DenseReluDense.wo.weight"].T
    x = rms(x, t["encoder.final_layer_norm.weight"])
    m = mask[..., None].astype(np.float64)
    return (x * m).sum(1) / m.sum(1), x


def _inputs():
    ids = np.array([[5, 17, 42, 9, 1, 0, 0], [3, 3, 90, 11, 60, 2, 1]], np.int32)
    mask = (ids != 0).astype(np.int32)
    mask[1] = 1
    return ids, mask


def test_converted_tower_matches_numpy_t5_encoder(tmp_path):
    tensors = make_checkpoint(tmp_path / "hf")
    tower = t5_tower_from_huggingface(tmp_path / "hf")
    ids, mask = _inputs()
    want, _ = numpy_t5_encoder_mean_pooled(tensors, CONFIG, ids, mask)
    got = tower({"token_ids": ids, "padding_mask": mask}).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_converter_rejects_unsupported_checkpoints(tmp_path):
    make_checkpoint(tmp_path / "a", dict(CONFIG, feed_forward_proj="swiglu"))
    with pytest.raises(ValueError, match=r"config\.json: feed_forward_proj 'swiglu' is not supported"):
        t5_tower_from_huggingface(tmp_path / "a")
    make_checkpoint(tmp_path / "b", dict(CONFIG, model_type="bert"))
    with pytest.raises(ValueError, match=r"model_type 'bert' is not a T5 model"):
        t5_tower_from_huggingface(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match=r"No config\.json in .*nothing"):
        t5_tower_from_huggingface(tmp_path / "nothing")
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(tmp_path / "a" / "model.safetensors"))
    del tensors["encoder.block.1.layer.1.layer_norm.weight"]
    save_file(tensors, str(tmp_path / "a" / "model.safetensors"))
    (tmp_path / "a" / "config.json").write_text(json.dumps(CONFIG))
    with pytest.raises(ValueError, match=r"no tensor 'encoder\.block\.1\.layer\.1\.layer_norm\.weight'"):
        t5_tower_from_huggingface(tmp_path / "a")


def test_converted_tower_matches_transformers(tmp_path):
    """Optional extra (`pip install -r requirements/test-torch.txt`): the real Hugging Face T5EncoderModel."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.T5Config(**{k: v for k, v in CONFIG.items() if k != "model_type"})
    torch.manual_seed(0)
    model = transformers.T5EncoderModel(config).eval()
    model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    tower = t5_tower_from_huggingface(tmp_path / "hf")
    ids, mask = _inputs()
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    want = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(tower({"token_ids": ids, "padding_mask": mask}).numpy(), want, rtol=1e-4, atol=1e-5)


def test_dual_encoder_builds_from_a_huggingface_folder(tmp_path, t5_vocabulary):
    from tf_dualenc.models import build_t5_dual_encoder

    make_checkpoint(tmp_path / "hf", dict(CONFIG, vocab_size=32128))
    model = build_t5_dual_encoder(vocabulary=t5_vocabulary, preset=str(tmp_path / "hf"), architecture="ade_spl",
                                  query_sequence_length=8, document_sequence_length=8)
    features = model.query_preprocessor(["paris"])
    ids, mask = np.asarray(features["token_ids"]), np.asarray(features["padding_mask"]).astype(np.int32)
    reference = t5_tower_from_huggingface(tmp_path / "hf")
    np.testing.assert_allclose(
        model.query_tower({"token_ids": ids, "padding_mask": mask}).numpy(),
        reference({"token_ids": ids, "padding_mask": mask}).numpy(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        model.query_tower.encoder_layers[1].self_attention.query_projector.kernel.numpy(),
        model.document_tower.encoder_layers[1].self_attention.query_projector.kernel.numpy(),
    )
