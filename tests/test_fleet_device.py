"""The device side of the fleet without a cluster: the bundle store a device keeps, as chunks arrive and are
sealed. These functions run inside a device's worker; here they run in the test process on a real bundle."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from edgert.fleet import device_side as ds


@pytest.fixture
def device_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERT_HOME", str(tmp_path / "device"))
    return tmp_path / "device"


def _send(bundle, bid, *, chunk=4096, damage=None):
    names = ["edgert.json", *sorted(p.name for p in bundle.iterdir() if p.name != "edgert.json")]
    for name in names:
        data = (bundle / name).read_bytes()
        if damage == name:
            data = data[:-1] + bytes([data[-1] ^ 1])
        for off in reversed(range(0, max(len(data), 1), chunk)):  # out of order: chunks may arrive in any order
            ds.receive("bundles", bid, name, off, data[off : off + chunk])


def _id(bundle):
    return hashlib.sha256((bundle / "edgert.json").read_bytes()).hexdigest()


def test_a_bundle_sent_in_chunks_is_sealed_verified_and_then_held(device_home, classifier_bundle):
    bid = _id(classifier_bundle)
    assert not ds.holds(bid)
    _send(classifier_bundle, bid)
    path = ds.seal(bid)
    assert ds.holds(bid) and ds.bundle_path(bid) == device_home / "fleet" / "bundles" / bid
    for p in classifier_bundle.iterdir():
        assert (ds.bundle_path(bid) / p.name).read_bytes() == p.read_bytes()
    assert path == str(ds.bundle_path(bid))


def test_a_file_damaged_on_the_way_is_refused_and_nothing_is_kept(device_home, classifier_bundle):
    from edgert.bundle import Bundle

    bid = _id(classifier_bundle)
    model = Bundle.open(classifier_bundle).model_file().name
    _send(classifier_bundle, bid, damage=model)
    with pytest.raises(ds.FleetError, match="failed verification on arrival"):
        ds.seal(bid)
    assert not ds.holds(bid)
    assert not (device_home / "fleet" / "bundles" / f"{bid}.partial").exists()
    with pytest.raises(ds.FleetError, match="does not hold"):
        ds.bundle_path(bid)


def test_a_manifest_that_is_not_the_one_sent_is_refused(device_home, classifier_bundle, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(classifier_bundle, other)
    text = (other / "edgert.json").read_text()
    (other / "edgert.json").write_text(text.replace('"task"', '"task" ', 1))  # same bundle, other bytes
    bid = _id(classifier_bundle)
    _send(other, bid)
    with pytest.raises(ds.FleetError, match="not the .* that was sent"):
        ds.seal(bid)
    assert not ds.holds(bid)


def test_a_file_the_manifest_does_not_list_is_refused(device_home, classifier_bundle):
    bid = _id(classifier_bundle)
    _send(classifier_bundle, bid)
    ds.receive("bundles", bid, "run-me.py", 0, b"import os\n")
    with pytest.raises(ds.FleetError, match="does not list: run-me.py"):
        ds.seal(bid)


@pytest.mark.parametrize("name", ["../escape.onnx", "/etc/passwd", "a/../../b"])
def test_a_name_that_climbs_out_of_the_staging_folder_is_refused(device_home, name):
    with pytest.raises(ds.FleetError):
        ds.receive("bundles", "0" * 64, name, 0, b"x")
    assert not (device_home / "fleet" / "escape.onnx").exists()
    assert not list(device_home.parent.glob("escape*"))


def test_a_payload_id_that_is_not_a_sha256_is_refused(device_home):
    with pytest.raises(ds.FleetError, match="not a payload id"):
        ds.receive("bundles", "../../x", "edgert.json", 0, b"{}")


def test_data_is_verified_against_its_listing(device_home, tmp_path):
    from edgert.bundle import sha256_file

    src = tmp_path / "set"
    (src / "sub").mkdir(parents=True)
    (src / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n')
    (src / "sub" / "corpus.jsonl").write_text('{"_id": "d1", "text": "b"}\n')
    names = ["queries.jsonl", "sub/corpus.jsonl"]
    listing = [(n, (src / n).stat().st_size, sha256_file(src / n)) for n in names]
    did = ds.listing_id(listing)
    for n in names:
        ds.receive("data", did, n, 0, (src / n).read_bytes())
    ds.seal_data(did, listing)
    assert (
        ds.holds_data(did)
        and (ds.data_path(did) / "sub" / "corpus.jsonl").read_bytes() == (src / "sub" / "corpus.jsonl").read_bytes()
    )
    assert ds._resolve(f"{ds.DATA_TOKEN}{did}/queries.jsonl") == str(ds.data_path(did) / "queries.jsonl")

    bad = [(n, size, "0" * 64) for n, size, _ in listing]  # the listing says other bytes than arrived
    bid = ds.listing_id(bad)
    for n in names:
        ds.receive("data", bid, n, 0, (src / n).read_bytes())
    with pytest.raises(ds.FleetError, match="failed verification on arrival"):
        ds.seal_data(bid, bad)
    assert not ds.holds_data(bid)
