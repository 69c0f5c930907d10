import hashlib
import pickle
import tarfile

import numpy as np
import pytest

from circadian_core.datasets import (
    ChecksumError,
    DatasetUnavailableError,
    dataset_names,
    fetch,
    load_cifar,
    load_dataset,
    split_digits,
)
from circadian_core.datasets.cifar import _SOURCES


def test_registry_lists_and_suggests():
    assert {"digits", "split_digits", "cifar10", "cifar100"} <= set(dataset_names())
    with pytest.raises(KeyError, match="did you mean 'split_digits'"):
        load_dataset("split_digit")


def test_split_digits_five_disjoint_two_class_tasks():
    tasks = split_digits()
    assert len(tasks) == 5
    seen = set()
    for t in tasks:
        assert len(t.labels) == 2
        assert set(np.unique(t.y_train)) == set(t.labels) == set(np.unique(t.y_test))
        assert not seen & set(t.labels)
        seen |= set(t.labels)
        assert t.x_train.dtype == np.float32 and t.x_train.shape[1:] == (8, 8)
        assert 0.0 <= t.x_train.min() and t.x_train.max() <= 1.0
    assert seen == set(range(10))
    assert [t.labels for t in tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def test_class_order_follows_seed():
    a = [t.labels for t in split_digits(class_order_seed=3)]
    b = [t.labels for t in split_digits(class_order_seed=3)]
    c = [t.labels for t in split_digits(class_order_seed=4)]
    assert a == b and a != c
    assert sorted(sum(a, [])) == list(range(10))


def test_train_test_disjoint_and_sized():
    d = load_dataset("digits")
    assert len(d.y_train) + len(d.y_test) == 1797
    assert abs(len(d.y_test) / 1797 - 0.25) < 0.01


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_downloads_and_verifies(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    dest = tmp_path / "data" / "file.bin"
    got = fetch(src.as_uri(), dest, _sha(src), progress=False)
    assert got.read_bytes() == b"hello"
    # second call verifies and does not download again
    src.unlink()
    assert fetch(src.as_uri(), dest, hashlib.sha256(b"hello").hexdigest()) == dest


def test_fetch_checksum_mismatch_keeps_nothing_partial(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    dest = tmp_path / "data" / "file.bin"
    with pytest.raises(ChecksumError, match="delete it and rerun"):
        fetch(src.as_uri(), dest, "0" * 64, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))


def test_existing_corrupt_file_is_reported_not_deleted(tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"corrupt")
    with pytest.raises(ChecksumError, match="expected"):
        fetch("file:///nonexistent", dest, "0" * 64)
    assert dest.read_bytes() == b"corrupt"


def test_offline_error_names_file_to_place(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match=r"place it at .*cifar-10-python.tar.gz"):
        load_cifar("cifar10", root=tmp_path)


def test_unreachable_url_names_file_to_place(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="place it at"):
        fetch((tmp_path / "missing").as_uri(), tmp_path / "x.bin", "0" * 64)


def test_cifar_reads_torchvision_layout(tmp_path):
    """A tiny archive in the real CIFAR-10 layout, with its real md5 swapped in, loads as NHWC uint8."""
    folder = tmp_path / "build" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in _SOURCES["cifar10"]["train"] + _SOURCES["cifar10"]["test"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": list(range(10)) * 2}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}))
    archive = tmp_path / "root" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    orig = _SOURCES["cifar10"]["md5"]
    _SOURCES["cifar10"]["md5"] = md5
    try:
        ds = load_cifar("cifar10", root=tmp_path / "root", train_size=50, test_size=10)
    finally:
        _SOURCES["cifar10"]["md5"] = orig
    assert ds.x_train.shape == (50, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10, 32, 32, 3)
    assert np.bincount(ds.y_train).tolist() == [5] * 10
    assert ds.classes[3] == "c3"


def test_a_corrupt_file_offline_is_not_told_to_download_again(tmp_path, monkeypatch):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"corrupt")
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    with pytest.raises(ChecksumError) as info:
        fetch("https://example.invalid/file.bin", dest, "0" * 64)
    assert "rerun to download" not in str(info.value)
    assert "download https://example.invalid/file.bin on a machine with network access" in str(info.value)
    assert dest.read_bytes() == b"corrupt"


def test_network_available_is_false_offline_and_for_unreachable_hosts(monkeypatch, tmp_path):
    from circadian_core.datasets.download import network_available

    assert network_available(tmp_path.as_uri())
    assert not network_available((tmp_path / "absent").as_uri())
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    assert not network_available(tmp_path.as_uri())
