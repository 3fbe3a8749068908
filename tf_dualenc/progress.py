"""The progress of a long encoding, as lines on stderr: texts done / total, texts per second, time left.

The one home of the progress lines of every corpus encoding: `DualEncoder.encode_queries` / `encode_documents` and
`ExportedDualEncoder`'s with `verbose=1` (`encoder_options` turns that on for a caller's `progress`),
`evaluate_retrieval(progress=True)`, `analyze_model(progress=True)`, build-index's encoder workers, and the TFX
pipeline's evaluator and indexer (`components_show_progress`). The command line shows them unless `--quiet`; in Python
they are off unless asked for.

A line at a time rather than a redrawn bar: it reads the same in a terminal, a log file and a CI job's output. It
goes to stderr, so a command's stdout (its result, or its `--json` object) stays clean:

    encoding documents: 1,280/5,183 (24.7%), 412.3 documents/s, ETA 0:00:09
    encoding documents: 5,183/5,183 (100.0%), 405.1 documents/s, took 0:00:13
"""

import contextlib
import os
import sys
import threading
import time

# Seconds between two lines; the last line comes when the last text is done, however soon.
INTERVAL_SECONDS = 5.0

# "0" turns off the progress lines of the TFX components' encodings (`components_show_progress`).
PROGRESS_VARIABLE = "TF_DUALENC_PROGRESS"


def encoder_options(progress):
    """The keyword arguments of `encode_queries` / `encode_documents` for a caller's `progress` flag: `verbose=1` when
    on; none when off, so a stand-in model need not take `verbose`."""
    return {"verbose": 1} if progress else {}


def components_show_progress():
    """Whether the TFX pipeline's evaluator and indexer show the progress of their encodings: yes unless the
    environment sets TF_DUALENC_PROGRESS=0 (`tf-dualenc pipeline run --quiet` does, for its run; on Vertex AI, set it in
    the container image's environment). TFX runs their executors, so no caller can pass them `progress`; and an execution parameter
    would be part of TFX's cache key, so toggling --quiet would re-run the components."""
    return os.environ.get(PROGRESS_VARIABLE, "1").strip() != "0"


@contextlib.contextmanager
def components_progress(enabled):
    """Within the block, the TFX components show no progress unless `enabled` (`components_show_progress`; a
    TF_DUALENC_PROGRESS=0 of the environment holds either way); the environment is restored after it."""
    before = os.environ.get(PROGRESS_VARIABLE)
    if not enabled:
        os.environ[PROGRESS_VARIABLE] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROGRESS_VARIABLE, None)
        else:
            os.environ[PROGRESS_VARIABLE] = before


def format_duration(seconds):
    """0:00:09, 1:02:03."""
    minutes, seconds = divmod(max(int(round(seconds)), 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


class Progress:
    """Counts texts done (`update`) and writes a line to stderr at most every `interval` seconds, and one when the last
    of `total` is done (or at `close`, when the total is unknown). Thread-safe: a Beam worker's threads share one.

    Args:
        total: texts expected; None when unknown (a worker that sees only its share of the corpus): no ETA then.
        unit: what is counted, plural ("documents", "queries").
        label: what is being done to them.
        enabled: False makes it silent (`--quiet`, `verbose=0`).
        interval: seconds between lines.
        stream: where lines go (default: `sys.stderr` when a line is written).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, total=None, unit="documents", *, label="encoding", enabled=True, interval=INTERVAL_SECONDS, stream=None,
                 clock=time.monotonic):
        self.total = total
        self.unit = unit
        self.label = label
        self.enabled = enabled
        self.interval = interval
        self.done = 0
        self._stream = stream
        self._clock = clock
        self._started = clock()  # before the first batch, so the first batch's time counts
        self._last_line = self._started
        self._finished = False
        self._lock = threading.Lock()

    def update(self, count):
        """`count` more texts are done."""
        with self._lock:
            self.done += count
            now = self._clock()
            if self.total is not None and self.done >= self.total:
                self._finish(now)
            elif now - self._last_line >= self.interval:
                self._last_line = now
                self._write(self.line(now))

    def close(self):
        """The last line, if it was not written yet (a total never reached, or unknown); nothing when no text was done."""
        with self._lock:
            if self.done:
                self._finish(self._clock())

    def line(self, now=None):
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        done = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,} ({self.done / max(self.total, 1):.1%})"
        text = f"{self.label} {self.unit}: {done}, {rate:.1f} {self.unit}/s"
        if self._finished or (self.total is not None and self.done >= self.total):
            return f"{text}, took {format_duration(elapsed)}"
        if self.total is not None and rate > 0:
            return f"{text}, ETA {format_duration((self.total - self.done) / rate)}"
        return text

    def _finish(self, now):
        if not self._finished:
            self._finished = True
            self._write(self.line(now))

    def _write(self, text):
        if self.enabled:
            stream = self._stream or sys.stderr
            print(text, file=stream, flush=True)
