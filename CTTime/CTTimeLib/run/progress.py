"""Progress of a run, from the events of ``pipeline.run``: a terminal bar, plain lines, or JSON lines.

Events are dicts with an "event" key: "start" (cases, workers, scheduler, extractor), one "case" per study (done,
total, patient_id, timepoint, lesions, failed, cached, seconds) and "summary" (lesions, ok, failed,
failed_by_kind...).
"""

import datetime
import json
import sys
import time


class ProgressBar:
    """A tqdm bar over studies (rate and ETA), with the lesions done, their rate, failures and cache hits."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bar = None
        self.lesions = self.failed = self.cached = 0
        self.started = time.perf_counter()

    def __call__(self, event):
        from tqdm import tqdm

        if event["event"] == "start":
            self.started = time.perf_counter()
            self.bar = tqdm(total=event["cases"], unit="study", file=self.stream, dynamic_ncols=True,
                            desc="CT-TIME")
        elif event["event"] == "case" and self.bar is not None:
            self.lesions += event["lesions"]
            self.failed += event["failed"]
            self.cached += bool(event["cached"])
            rate = self.lesions / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"{self.lesions} lesions ({rate:.2f}/s), {self.failed} failed, "
                                     f"{self.cached} studies from cache", refresh=False)
            self.bar.update(1)
        elif event["event"] == "summary" and self.bar is not None:
            self.bar.close()


class Lines:
    """One plain line per study (a log file or a pipe, where a bar would be noise)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def __call__(self, event):
        if event["event"] == "case":
            note = " (cache)" if event["cached"] else ""
            failed = f", {event['failed']} failed" if event["failed"] else ""
            print(f"  [{event['done']}/{event['total']}] {event['patient_id']} {event['timepoint']}: "
                  f"{event['lesions']} lesion(s){failed}{note}", file=self.stream, flush=True)


class JsonLines:
    """Every event as one JSON object per line, with a UTC time stamp, for scripts."""

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, event):
        stamped = dict(event, time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"))
        self.stream.write(json.dumps(stamped, default=str) + "\n")
        self.stream.flush()


def combine(*reporters):
    """One events callback feeding every reporter given (None entries are skipped)."""
    chosen = [reporter for reporter in reporters if reporter is not None]

    def report(event):
        for reporter in chosen:
            reporter(event)

    return report
