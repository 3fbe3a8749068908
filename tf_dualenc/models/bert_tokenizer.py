"""The BERT-family tokenizer every builder uses: keras-hub's WordPiece, normalising text as Hugging Face's BERT does.

keras-hub's `BertTokenizer` lowercases with TF Text's `case_fold_utf8`, which is NFKC_Casefold: it also applies NFKC
("⁻" → "−", "²" → "2", "µ" → "μ", "ﬁ" → "fi", "…" → "...") and case folding ("ß" → "ss"), and it does not strip
accents unless asked (its `strip_accents` defaults to False, so an uncased vocabulary gives "naïve" → `[UNK]`).
Hugging Face's uncased BERT tokenizer (`BertNormalizer` / `BasicTokenizer`, what the checkpoints were trained and
evaluated with) instead, in this order: drops NUL, U+FFFD and control/format characters (Unicode C*, except tab and
newlines) and maps whitespace (Zs) to a space; strips accents (NFD, then drops the Mn marks) when `strip_accents`,
which defaults to `lowercase`; lowercases character by character (no NFKC, no case folding). `HuggingFaceBertTokenizer`
does exactly those steps before keras-hub's own split (whitespace, punctuation, CJK) and WordPiece, on both of
keras-hub's paths (the TF Text graph of a `tf.function` / `tf.data` / SavedModel, and the eager pure-Python one).

Ops the graph adds: `NormalizeUTF8` (TF Text, in stock TF Serving's op library like the other TF Text ops) and the
core `StaticRegexReplace` / `StringLower`; `CaseFoldUTF8` is no longer used.
"""

import unicodedata

import keras
import keras_hub

# Hugging Face's clean_text: NUL, U+FFFD and every C-category character except \t \n \r go; RE2 syntax.
_DROP_RE2 = r"[\x{0}\x{FFFD}]|[^\P{C}\t\n\r]"
_MARK_RE2 = r"\p{Mn}"
_SPACE_RE2 = r"\p{Zs}"


def _drop_python(c):
    return c in "\x00\ufffd" or (c not in "\t\n\r" and unicodedata.category(c).startswith("C"))


def normalize_like_huggingface(text, lowercase, strip_accents):
    """One Python string normalised as Hugging Face's `BertNormalizer` (clean_text, strip_accents, lowercase)."""
    text = "".join(" " if unicodedata.category(c) == "Zs" else c for c in text if not _drop_python(c))
    if strip_accents:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    if lowercase:
        # Character by character, as Hugging Face does: no word-final "ς" for a capital sigma (str.lower's context rule).
        text = text.replace("Σ", "σ").lower()
    return text


def normalize_like_huggingface_tf(text, lowercase, strip_accents):
    """The same on a string tensor, in graph: core regex / lower ops and TF Text's `normalize_utf8`."""
    import tensorflow as tf

    text = tf.strings.regex_replace(text, _DROP_RE2, "")
    text = tf.strings.regex_replace(text, _SPACE_RE2, " ")
    if strip_accents:
        import tensorflow_text as tf_text

        text = tf.strings.regex_replace(tf_text.normalize_utf8(text, "NFD"), _MARK_RE2, "")
    if lowercase:
        # StringLower with an encoding lowercases with ICU, which turns a word-final capital sigma into "ς".
        text = tf.strings.lower(tf.strings.regex_replace(text, "Σ", "σ"), encoding="utf-8")
    return text


@keras.saving.register_keras_serializable(package="tf_dualenc")
class HuggingFaceBertTokenizer(keras_hub.models.BertTokenizer):
    """keras-hub's `BertTokenizer` with Hugging Face's BERT text normalisation (see the module docstring).

    Args:
        vocabulary: as `keras_hub.models.BertTokenizer` (a list of word pieces or a vocab.txt path).
        lowercase: lowercase the text (Hugging Face's `do_lower_case`).
        strip_accents: strip accents (NFD, then drop Mn marks); None (default) follows `lowercase`, as in
            Hugging Face's BERT tokenizers and Google's original uncased BERT.

    keras-hub's own `lowercase` / `strip_accents` steps (the attributes of the parent class) stay off: this class
    does both before keras-hub splits the text. Its config records this class's values.
    """

    def __init__(self, vocabulary=None, lowercase=False, strip_accents=None, **kwargs):
        super().__init__(vocabulary=vocabulary, lowercase=False, strip_accents=False, **kwargs)
        self.do_lower_case = bool(lowercase)
        self.do_strip_accents = self.do_lower_case if strip_accents is None else bool(strip_accents)

    def normalize(self, inputs):
        """Hugging Face's BERT normalisation of a string, a list of strings or a string tensor."""
        if self._use_tf_workflow():
            return normalize_like_huggingface_tf(inputs, self.do_lower_case, self.do_strip_accents)
        return _map_strings(inputs, lambda s: normalize_like_huggingface(s, self.do_lower_case, self.do_strip_accents))

    def tokenize(self, inputs):
        return super().tokenize(self.normalize(inputs))

    def get_config(self):
        config = super().get_config()
        config.update({"lowercase": self.do_lower_case, "strip_accents": self.do_strip_accents})
        return config


def _map_strings(inputs, fn):
    """`fn` over every string of what keras-hub's Python path accepts: a string or bytes, a (nested) list, a NumPy
    array, an eager tensor or ragged tensor. Strings come back as `str`, containers as (nested) lists."""
    if isinstance(inputs, bytes):
        return fn(inputs.decode("utf-8"))
    if isinstance(inputs, str):  # np.str_ too
        return fn(str(inputs))
    if hasattr(inputs, "to_list"):  # tf.RaggedTensor
        return _map_strings(inputs.to_list(), fn)
    if hasattr(inputs, "numpy"):  # an eager tf.Tensor
        return _map_strings(inputs.numpy(), fn)
    if hasattr(inputs, "tolist"):  # a NumPy array (0-d gives its one string)
        return _map_strings(inputs.tolist(), fn)
    return [_map_strings(x, fn) for x in inputs]


def huggingface_strip_accents_setting(preset):
    """`strip_accents` of a local Hugging Face folder's tokenizer_config.json (None: absent, or not such a folder)."""
    import json
    import os

    path = os.path.join(os.fspath(preset), "tokenizer_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("strip_accents")


def bert_tokenizer(preset):
    """The tokenizer of a BERT-family preset (keras-hub preset name, local Hugging Face folder, keras-hub preset
    folder) as a `HuggingFaceBertTokenizer`: the preset's vocabulary and `lowercase`, and the folder's `strip_accents`
    when it names one (else it follows `lowercase`)."""
    base = keras_hub.models.BertTokenizer.from_preset(preset)
    return HuggingFaceBertTokenizer(
        vocabulary=base.get_vocabulary(),
        lowercase=base.lowercase,
        strip_accents=huggingface_strip_accents_setting(preset),
    )


def bert_preprocessor(preset, sequence_length, name):
    """A `BertTextClassifierPreprocessor` ([CLS] a [SEP] (b [SEP]), segment ids, round-robin truncation) over
    `bert_tokenizer(preset)`: what the BERT dual encoder's and cross-encoder's builders use."""
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer=bert_tokenizer(preset), sequence_length=sequence_length, name=name
    )
