"""Storage: the one atomic write, local folders and S3 (moto's server) behind one interface."""

from __future__ import annotations

import os

import boto3
import pytest

from actionrec.io import atomic
from actionrec.io.storage import Store, list_videos


def test_atomic_write_leaves_the_old_file_or_the_new_one_never_a_temp(tmp_path):
    target = tmp_path / "sub" / "table.parquet"
    atomic.write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old" and os.listdir(target.parent) == ["table.parquet"]


def test_atomic_write_gives_the_normal_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "report.md", "# hi\n")
    finally:
        os.umask(old)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o644


def test_listings_skip_temp_and_lock_files(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / ".a.mp4.0123456789ab.tmp").write_bytes(b"x")
    (tmp_path / ".champion.json.lock").write_bytes(b"")
    assert [v.uri.rsplit("/", 1)[-1] for v in Store(tmp_path).list()] == ["a.mp4"]
    assert len(list_videos(tmp_path)) == 1


def test_s3_file_uploads_are_streamed_in_parts(s3_endpoint, tmp_path, monkeypatch):
    """Bug: uploads read the whole file into memory. A managed upload streams it in parts, and the
    object still appears whole (S3 completes a multipart upload atomically)."""
    from actionrec.io import s3

    boto3.client("s3").create_bucket(Bucket="uploads")
    monkeypatch.setattr(s3, "_MULTIPART_BYTES", 5 * 2**20)  # S3's smallest part size
    big = tmp_path / "model.pt"
    big.write_bytes(os.urandom(12 * 2**20))
    Store("s3://uploads/lake").write_file("models/m/v/model.pt", big)
    head = boto3.client("s3").head_object(Bucket="uploads", Key="lake/models/m/v/model.pt")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    with Store("s3://uploads/lake").local_copy("models/m/v/model.pt") as copy:
        assert copy.read_bytes() == big.read_bytes()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_compare_and_swap(where, tmp_path, request):
    if where == "s3":
        request.getfixturevalue("s3_endpoint")
        boto3.client("s3").create_bucket(Bucket="cas")
        store = Store("s3://cas/lake")
    else:
        store = Store(tmp_path / "lake")
    assert store.compare_and_swap("champion.json", None, b"v1")
    assert not store.compare_and_swap("champion.json", None, b"v2")  # it exists now
    assert not store.compare_and_swap("champion.json", b"v0", b"v2")  # someone else's value
    assert store.compare_and_swap("champion.json", b"v1", b"v2")
    assert store.read_bytes("champion.json") == b"v2"
