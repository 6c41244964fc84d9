"""The CSIC 2010 reader on the real dataset: all 97,065 requests, bodies included, none quarantined."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import polars as pl
import pytest

from mamori.events import Quarantine, detect_format, read_csic, read_csic_files, read_events
from mamori_testing import require_dataset

EXPECTED = {"normalTrafficTraining": 36_000, "normalTrafficTest": 36_000, "anomalousTrafficTest": 25_065}


@pytest.mark.slow
@pytest.mark.data
def test_reads_every_request_of_the_zip() -> None:
    # Prepare
    path = require_dataset("csic_dataset.zip")
    q = Quarantine()
    # Execute
    result = read_csic(path, quarantine=q)
    # Assert
    frame, summary = result.frame, result.summary
    assert detect_format(path) == "csic"
    assert frame.height == summary.parsed == 97_065
    assert summary.quarantined == 0 and q.records == []
    assert frame.get_column("labels.is_attack").value_counts().sort("labels.is_attack").rows() == [
        (False, 72_000),
        (True, 25_065),
    ]
    with_body = frame.filter(pl.col("http.request.method").is_in(["POST", "PUT"]))
    assert with_body.height == 8_000 + 8_000 + 9_580 + 397
    assert with_body.get_column("http.request.body.content").is_not_null().all()
    assert frame.filter(pl.col("http.request.method") == "GET").get_column("http.request.body.content").is_null().all()
    normal = frame.filter(~pl.col("labels.is_attack"))
    assert normal.get_column("url.domain").unique().to_list() == ["localhost"]
    assert frame.get_column("url.domain").is_not_null().all()  # attacks include hosts like 'localhost:8080.BAK'

    assert frame.get_column("session.id").is_not_null().all()


@pytest.mark.slow
@pytest.mark.data
def test_reads_each_file_separately_with_its_count() -> None:
    path = require_dataset("csic_dataset.zip")
    parts = read_csic_files(path)
    assert {k: v[0].height for k, v in parts.items()} == EXPECTED
    assert all(s.quarantined == 0 for _, s in parts.values())
    training, _ = parts["normalTrafficTraining"]
    first_post = training.filter(pl.col("http.request.method") == "POST").row(0, named=True)
    assert first_post["url.path"] == "/tienda1/publico/anadir.jsp"
    assert first_post["http.request.body.content"] == (
        "id=3&nombre=Vino+Rioja&precio=100&cantidad=55&B1=A%F1adir+al+carrito"
    )
    assert (
        first_post["user_agent.original"] == "Mozilla/5.0 (compatible; Konqueror/3.5; Linux) KHTML/3.5.8 (like Gecko)"
    )
    assert not training.get_column("labels.is_attack").any()


@pytest.mark.data
def test_reads_a_single_txt_gz_and_txt(tmp_path: Path) -> None:
    path = require_dataset("csic_dataset.zip")
    with zipfile.ZipFile(path) as archive:
        data = archive.read("csic_dataset/anomalousTrafficTest.txt.gz")
    gz = tmp_path / "anomalousTrafficTest.txt.gz"
    gz.write_bytes(data)
    txt = tmp_path / "anomalousTrafficTest.txt"
    txt.write_bytes(gzip.decompress(data))
    for file in (gz, txt):
        result = read_events(file, "auto")
        assert result.summary.format == "csic"
        assert result.frame.height == 25_065
        assert result.frame.get_column("labels.is_attack").all()
