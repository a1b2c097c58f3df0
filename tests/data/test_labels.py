"""Label tables: validated when read, relative URIs resolved beside the table, and a split that
depends on the video alone, never on where the data set is mounted."""

from __future__ import annotations

import shutil

import boto3
import pytest

from actionrec.data.labels import LabelRules, hash_split, read_labels
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


def test_contradictions_are_refused_all_at_once_with_their_rows(tmp_path):
    """Reported: the same video under two labels or in train and test, repeated rows (evaluation
    counted 16 videos for 12), labels that differ in case: all accepted. Now every problem is listed."""
    table = tmp_path / "labels.csv"
    table.write_text("video_uri,label,split\n"
                     "v/a.mp4,waving,train\n"     # row 2
                     "v/b.mp4,running,train\n"    # row 3
                     "./v/a.mp4,running,train\n"  # row 4: a.mp4 again, another label
                     "v/c.mp4,growing,train\n"    # row 5
                     "v/c.mp4,growing,test\n"     # row 6: c.mp4 in train and test
                     "v/d.mp4,GROWING,train\n"    # row 7: a class spelled two ways
                     "v/e.mp4,running,val\n"      # row 8
                     "v/e.mp4,running,val\n"      # row 9: repeated word for word
                     ",running,val\n")            # row 10: no video
    with pytest.raises(ConfigError) as info:
        read_labels(table)
    message = str(info.value)
    for words in ("5 problem(s)", "rows 2 and 4 name the same video ./v/a.mp4 with labels 'waving' and 'running'",
                  "rows 5 and 6 name the same video v/c.mp4 in train and test", "rows 8 and 9 name the same video "
                  "v/e.mp4 twice", "'GROWING' (rows 7)", "'growing' (rows 5, 6)", "row 10: empty video_uri"):
        assert words in message, (words, message)


def test_opt_in_repairs_fold_case_and_drop_repeated_rows(tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("video_uri,label,split\nv/a.mp4,growing,train\nv/b.mp4,growing,train\nv/c.mp4,GROWING,val\n"
                     "v/d.mp4,shrinking,val\nv/d.mp4,shrinking,val\n")
    with pytest.raises(ConfigError, match="2 problem"):
        read_labels(table)
    fixed = read_labels(table, rules=LabelRules(fold_case=True, drop_repeats=True))
    assert fixed.classes == ("growing", "shrinking") and len(fixed.rows) == 4
    assert [r.label for r in fixed.rows if r.uri.endswith("c.mp4")] == ["growing"]


def test_a_repeated_column_is_refused_not_silently_won_by_the_last(tmp_path):
    """Reported: with two label columns the last one silently won (a one-class model reported 1.0)."""
    table = tmp_path / "labels.csv"
    table.write_text("video_uri,label,label\nv/a.mp4,waving,x\nv/b.mp4,running,x\n")
    with pytest.raises(ConfigError, match="column 'label' appears 2 times"):
        read_labels(table)


def test_encodings(tmp_path):
    """UTF-16 with its byte-order mark (a spreadsheet export) reads; Latin-1 is refused in words."""
    table = tmp_path / "labels.csv"
    table.write_bytes("video_uri,label\nv/é.mp4,café\n".encode("utf-16"))
    assert read_labels(table).classes == ("café",)
    table.write_bytes("video_uri,label\nv/e.mp4,café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text.*Latin-1"):
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
