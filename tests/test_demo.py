import json

import pytest

from tf_dualenc import demo


@pytest.mark.slow
def test_demo_trains_saves_and_reports(tmp_path, t5_vocabulary):
    lines = []
    report = demo.run(output_dir=tmp_path, steps=40, vocabulary=t5_vocabulary, print_fn=lines.append)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert (tmp_path / "model.keras").exists()
    assert not list(tmp_path.glob("*.tmp*"))
    # 40 steps of SamToNe make the 48 training pairs retrievable: well above the random-init numbers.
    before, after = report["metrics_before"]["train"], report["metrics_after"]["train"]
    assert after["P@1"] >= 0.5 and after["P@1"] > before["P@1"] + 0.3
    assert report["reload_max_abs_diff"] < 1e-5
    assert any(line.startswith("held_out") for line in lines)


def test_demo_trains_its_own_vocabulary_without_t5(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "SHARED_T5_VOCABULARY", tmp_path / "absent.model")
    monkeypatch.delenv("TF_DUALENC_T5_VOCABULARY", raising=False)
    report = demo.run(output_dir=tmp_path, steps=2, print_fn=lambda *_: None)
    assert report["vocabulary"]["source"].startswith("trained on the sample")
    assert (tmp_path / "spiece.model").exists()


def test_demo_rejects_bad_steps(tmp_path):
    with pytest.raises(ValueError, match=r"--steps must be >= 1; got 0"):
        demo.run(output_dir=tmp_path, steps=0)
