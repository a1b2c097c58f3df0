"""Label tables: validated when read, relative URIs resolved beside the table, and a split that
depends on the video alone, never on where the data set is mounted."""

from __future__ import annotations

import shutil

import boto3
import pytest

from actionrec.data.labels import hash_split, read_labels
from actionrec.errors import ConfigError
from actionrec.io.uris import local_path


def test_hash_split_is_stable_and_balanced():
    splits = [hash_split(f"videos/v{i}.mp4") for i in range(2000)]
    assert splits == [hash_split(f"videos/v{i}.mp4") for i in range(2000)]
    assert 0.6 < splits.count("train") / 2000 < 0.8
    assert 0.1 < splits.count("test") / 2000 < 0.2


def test_the_split_does_not_move_with_the_mount_point(tmp_path):
    """Bug: without a split column the split hashed the absolute path, so moving the data set
    reshuffled train and test."""
    here = tmp_path / "mnt" / "a" / "dataset"
    here.mkdir(parents=True)
    (here / "labels.csv").write_text("video_uri,label\n" + "".join(f"videos/v{i}.mp4,c{i % 3}\n" for i in range(60)))
    there = tmp_path / "elsewhere" / "copy"
    shutil.copytree(here, there)

    def sides(table):
        return {r.uri.rsplit("/", 1)[-1]: r.split for r in table.rows}

    first, moved = read_labels(here / "labels.csv"), read_labels(there / "labels.csv")
    assert sides(first) == sides(moved)
    assert {"train", "val", "test"} == set(sides(first).values())
    # An absolute path below the table's folder is the same video as its relative name.
    (here / "abs.csv").write_text(f"video_uri,label\n{here / 'videos' / 'v7.mp4'},c1\n")
    assert read_labels(here / "abs.csv").rows[0].split == sides(first)["v7.mp4"]


def test_s3_tables_hash_the_key_below_the_table(s3_endpoint):
    s3 = boto3.client("s3")
    for bucket in ("mount-a", "mount-b"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="sets/one/labels.csv",
                      Body=("video_uri,label\n" + "".join(f"v{i}.mp4,x\n" for i in range(30))).encode())
    a = read_labels("s3://mount-a/sets/one/labels.csv")
    b = read_labels("s3://mount-b/sets/one/labels.csv")
    assert [r.split for r in a.rows] == [r.split for r in b.rows]
    assert a.rows[0].split == hash_split("v0.mp4")


def test_quoted_fields_and_unicode_line_separators(tmp_path):
    """Bug: the text was cut with ``splitlines()`` first, which also cuts at U+2028 and form feeds
    (text pasted from web pages and spreadsheets), splitting one row in two."""
    table = tmp_path / "labels.csv"
    table.write_text('video_uri,label,note\n"clips/a, the first.mp4",waving,"two\nlines"\n'
                     'clips/b.mp4,running,see\u2028this\x0cthat\n', newline="")
    rows = read_labels(table).rows
    assert [local_path(r.uri).name for r in rows] == ["a, the first.mp4", "b.mp4"]
    assert [r.label for r in rows] == ["waving", "running"]


def test_the_same_video_twice_is_refused_with_its_lines(tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("video_uri,label\nv/a.mp4,x\nv/b.mp4,y\n./v/a.mp4,y\n")
    with pytest.raises(ConfigError, match=r"lines 2 and 4"):
        read_labels(table)


def test_label_table_errors(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("uri,label\nx.mp4,a\n")
    with pytest.raises(ConfigError, match="video_uri"):
        read_labels(bad)
    bad.write_text("video_uri,label,split\nx.mp4,a,holdout\n")
    with pytest.raises(ConfigError, match="split"):
        read_labels(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_labels(tmp_path / "missing.csv")


def test_label_table_in_s3_resolves_relative_uris_beside_it(s3_endpoint):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="labels")
    s3.put_object(Bucket="labels", Key="set1/labels.csv",
                  Body=b"video_uri,label,split\nvideos/a.mp4,left,train\ns3://other/b.mp4,right,test\n")
    table = read_labels("s3://labels/set1/labels.csv")
    assert [r.uri for r in table.rows] == ["s3://labels/set1/videos/a.mp4", "s3://other/b.mp4"]
    assert table.classes == ("left", "right") and len(table.sha256) == 64
