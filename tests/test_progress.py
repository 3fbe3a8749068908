"""The progress lines of a long encoding (`tf_dualenc.progress`), with a fake clock: no TensorFlow here."""

import io
import os

from tf_dualenc.progress import (PROGRESS_VARIABLE, Progress, components_progress, components_show_progress, encoder_options,
                                  format_duration)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_line_every_interval_and_one_when_the_last_text_is_done():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(1000, "documents", interval=5.0, stream=stream, clock=clock)
    clock.now += 2
    progress.update(100)  # 2 s in: too soon for a line
    assert stream.getvalue() == ""
    clock.now += 3
    progress.update(150)  # 5 s in: 250 done at 50/s, 750 left: 15 s
    assert stream.getvalue() == "encoding documents: 250/1,000 (25.0%), 50.0 documents/s, ETA 0:00:15\n"
    clock.now += 1
    progress.update(50)  # 1 s after the last line
    assert stream.getvalue().count("\n") == 1
    clock.now += 14
    progress.update(700)  # the last one: a line at once, with the time it took
    assert stream.getvalue().splitlines()[-1] == "encoding documents: 1,000/1,000 (100.0%), 50.0 documents/s, took 0:00:20"
    progress.close()  # written already
    assert stream.getvalue().count("\n") == 2


def test_disabled_progress_writes_nothing_and_an_unknown_total_has_no_eta():
    clock, stream = Clock(), io.StringIO()
    quiet = Progress(10, stream=stream, clock=clock, enabled=False)
    clock.now += 60
    quiet.update(10)
    quiet.close()
    assert stream.getvalue() == "" and quiet.done == 10
    share = Progress(None, "queries", label="worker", interval=1.0, stream=stream, clock=clock)
    clock.now += 2
    share.update(30)
    share.close()
    assert stream.getvalue().splitlines() == ["worker queries: 30, 15.0 queries/s", "worker queries: 30, 15.0 queries/s, took 0:00:02"]
    Progress(5, stream=stream, clock=clock).close()  # nothing done, nothing to say
    assert stream.getvalue().count("\n") == 2


def test_durations_read_as_hours_minutes_seconds():
    assert [format_duration(s) for s in (0, 9.4, 61, 3723, -1)] == ["0:00:00", "0:00:09", "0:01:01", "1:02:03", "0:00:00"]


def test_a_callers_progress_flag_becomes_the_encoders_verbose_and_off_passes_nothing():
    assert encoder_options(True) == {"verbose": 1} and encoder_options(False) == {}


def test_the_tfx_components_show_progress_unless_the_environment_or_a_quiet_run_says_not(monkeypatch):
    monkeypatch.delenv(PROGRESS_VARIABLE, raising=False)
    assert components_show_progress()
    with components_progress(False):
        assert not components_show_progress()
    assert components_show_progress() and PROGRESS_VARIABLE not in os.environ
    monkeypatch.setenv(PROGRESS_VARIABLE, "0")  # the user's own setting holds, and is kept
    with components_progress(True):
        assert not components_show_progress()
    assert not components_show_progress()
    monkeypatch.setenv(PROGRESS_VARIABLE, "1")
    with components_progress(False):
        assert not components_show_progress()
    assert components_show_progress()
