"""Model array files (segue.arrays): numpy's .npz format, members memory-mapped read-only where aligned."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from segue.arrays import load_arrays, save_arrays


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "factors": rng.standard_normal((1001, 7)).astype(np.float32),
        "bytes": np.arange(13, dtype=np.uint8),  # odd sizes shift the next member's offset
        "wide": rng.standard_normal(17),
        "ids": np.arange(5, dtype=np.int64),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)),
        "cube": rng.integers(0, 9, (2, 3, 4)).astype(np.int32),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(2.5),
    }


def test_written_arrays_load_mapped_read_only_and_aligned_and_numpy_reads_the_same(tmp_path):
    arrays = sample_arrays()
    path = tmp_path / "a.npz"
    save_arrays(path, **arrays)
    loaded = load_arrays(path)
    with np.load(path, allow_pickle=False) as by_numpy:
        assert sorted(by_numpy.files) == sorted(arrays)
        for name, array in arrays.items():
            np.testing.assert_array_equal(loaded[name], array)
            np.testing.assert_array_equal(by_numpy[name], array)
            assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
    for name in ("factors", "bytes", "wide", "ids", "fortran", "cube", "scalar"):
        array = loaded[name]
        assert not array.flags.writeable and not array.flags.owndata, name
        assert array.ctypes.data % 64 == 0, f"{name} is not 64-byte aligned"
    assert loaded["fortran"].flags.f_contiguous
    with pytest.raises(ValueError, match="read-only"):
        loaded["factors"][0, 0] = 1.0


def test_read_whole_when_asked_and_numpys_own_files_still_load(tmp_path):
    arrays = sample_arrays()
    save_arrays(tmp_path / "a.npz", **arrays)
    whole = load_arrays(tmp_path / "a.npz", mmap_mode=False)
    assert all(a.flags.writeable for a in whole.values())
    np.savez(tmp_path / "b.npz", **arrays)  # any offsets: members not aligned for their dtype are read whole
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    for name in ("b.npz", "c.npz"):
        loaded = load_arrays(tmp_path / name)
        for key, array in arrays.items():
            np.testing.assert_array_equal(loaded[key], array)
            assert loaded[key].ctypes.data % loaded[key].dtype.alignment == 0


def test_no_pickles_on_write_or_read(tmp_path):
    objects = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(ValueError):
        save_arrays(tmp_path / "a.npz", objects=objects)
    np.savez(tmp_path / "b.npz", objects=objects)  # numpy's writer pickles object arrays
    for mmap_mode in (True, False):
        with pytest.raises(ValueError, match="[Pp]ickle|objects"):
            load_arrays(tmp_path / "b.npz", mmap_mode=mmap_mode)


def test_a_truncated_file_is_an_error(tmp_path):
    path = tmp_path / "a.npz"
    save_arrays(path, **sample_arrays())
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises((ValueError, zipfile.BadZipFile)):
        load_arrays(path)
