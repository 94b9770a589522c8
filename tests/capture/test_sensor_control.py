"""Samples on demand: the wrapper's request waits until the sensor has written it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from inspectorate.capture._sensor_control import SampleControl, ask_sample


def test_a_request_returns_once_the_loop_has_written_its_sample(tmp_path: Path) -> None:
    ctl = SampleControl(tmp_path / "ctl.sock")
    written: list[float] = []
    answers: list[bool] = []

    def loop() -> None:  # the sensor's loop, reduced: wait, take, "write", answer
        while not ctl.closed:
            ctl.wake.wait(5.0)
            ctl.wake.clear()
            asked = ctl.take()
            if asked:
                written.append(time.monotonic())
                ctl.done(asked)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        for _ in range(2):
            answers.append(ask_sample(tmp_path / "ctl.sock"))
            assert written and written[-1] <= time.monotonic()
        assert answers == [True, True]
        assert written[1] - written[0] >= 0.19  # forced samples are spaced (MIN_GAP_S)
    finally:
        ctl.close()
    assert not (tmp_path / "ctl.sock").exists()
    assert ask_sample(tmp_path / "ctl.sock") is False  # nothing listens: the wrapper goes on
    assert ask_sample(None) is False
