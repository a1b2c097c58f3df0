"""The lake's lease: one holder at a time, taken by compare-and-swap, renewed while held, expired
when its holder stops renewing, on a folder and on S3."""

from __future__ import annotations

import threading
import time

import boto3
import pytest

from actionrec.errors import LakeBusyError
from actionrec.lake.lease import Lease


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path):
    if request.param == "s3":
        request.getfixturevalue("s3_endpoint")
        bucket = f"lease-{int(time.time() * 1e6)}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        return f"s3://{bucket}/lake"
    return str(tmp_path / "lake")


def test_one_holder_at_a_time(lake):
    with Lease(lake, "tag", "run A", ttl_s=60):
        with pytest.raises(LakeBusyError, match="being tagged by run A"):
            Lease(lake, "tag", "run B", ttl_s=60).acquire()
    with Lease(lake, "tag", "run B", ttl_s=60) as b:  # released: free again
        assert b.holder()["owner"].startswith("run B")
    assert Lease(lake, "tag", "x", ttl_s=60).holder() is None


def test_a_waiting_run_gets_the_lease_when_it_is_released(lake):
    first = Lease(lake, "tag", "run A", ttl_s=60)
    first.__enter__()
    threading.Timer(1.0, first.release).start()
    started = time.monotonic()
    with Lease(lake, "tag", "run B", ttl_s=60, wait_s=30, poll_s=0.2) as second:
        assert 0.8 < time.monotonic() - started < 20 and second.holder()["owner"].startswith("run B")


def test_a_crashed_holders_lease_expires_and_a_live_one_is_renewed(lake):
    crashed = Lease(lake, "tag", "run A", ttl_s=1)
    crashed.acquire()  # acquired but never renewed: as if killed
    with pytest.raises(LakeBusyError):
        Lease(lake, "tag", "run B", ttl_s=1).acquire()
    time.sleep(1.2)
    with Lease(lake, "tag", "run B", ttl_s=1.5) as alive:
        time.sleep(2.5)  # longer than its ttl: the renewals keep it
        with pytest.raises(LakeBusyError):
            Lease(lake, "tag", "run C", ttl_s=1).acquire()
        assert not alive.lost


def test_racing_runs_one_wins(lake):
    winners, start = [], threading.Barrier(5)

    def race(i):
        start.wait()
        try:
            Lease(lake, "tag", f"run {i}", ttl_s=60).acquire()
            winners.append(i)
        except LakeBusyError:
            pass

    threads = [threading.Thread(target=race, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_a_holder_killed_on_this_machine_frees_the_lake_at_once(lake):
    import subprocess
    import sys

    code = (f"from actionrec.lake.lease import Lease\nLease({lake!r}, 'tag', 'doomed run', ttl_s=600).acquire()\n"
            "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code], timeout=120)
    with Lease(lake, "tag", "next run", ttl_s=60) as next_run:  # no 600 s wait
        assert next_run.holder()["owner"].startswith("next run")
