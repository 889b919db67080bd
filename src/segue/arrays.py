"""Model arrays in ``.npz`` files that can be memory-mapped: numpy's own format (``np.load`` reads them), each
array stored uncompressed and starting at a 64-byte boundary of the file.

Why: a served model's arrays (2.07M x 128 factors, a 2.07M x 200 neighbour matrix: gigabytes at the MPD's
size) are then mapped, not read: the model loads at once, pages are read as they are touched, and processes
serving the same model share them through the page cache. ``np.savez`` stores members uncompressed too but
at any byte offset, where a mapped float array would be unaligned (numpy copies unaligned operands, e.g. for
every matrix product); files written by it, or by older segue, still load (such members are read whole).

Never pickles: object arrays are refused on write and on read.
"""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

ALIGN = 64  # numpy pads its .npy header to a multiple of this, so aligned members give aligned data
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
_ZIP64_EXTRA = 20  # zipfile adds a zip64 field of this size to the local header when forced
_PADDING_ID = 0x7367  # an unregistered extra-field id ("sg"): readers skip fields they do not know


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write ``arrays`` as an ``.npz`` whose members can be memory-mapped (see the module docstring)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            header_end = archive.fp.tell() + _LOCAL_HEADER.size + len(info.filename.encode()) + _ZIP64_EXTRA
            pad = (-(header_end + 4)) % ALIGN  # the padding field's own 4 bytes, then pad bytes
            info.extra = struct.pack("<HH", _PADDING_ID, pad) + bytes(pad)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def load_arrays(path: str | os.PathLike, mmap_mode: bool = True) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file. With ``mmap_mode``, members stored uncompressed at an aligned offset
    are read-only views of the file mapped into memory; the others are read whole. Raises ``ValueError`` (or
    zipfile's ``BadZipFile``) for a damaged file."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        mapped = None
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if mmap_mode and info.compress_type == zipfile.ZIP_STORED and info.file_size > 0:
                if mapped is None:
                    mapped = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
                array = _mapped_member(mapped, raw, info)
                if array is not None:
                    out[name] = array
                    continue
            with archive.open(info) as member:
                out[name] = np.lib.format.read_array(member, allow_pickle=False)
    return out


def _mapped_member(mapped: mmap.mmap, raw, info: zipfile.ZipInfo) -> np.ndarray | None:
    """The member's array as a view of ``mapped``, or None where it cannot be one (unaligned, empty, or a
    header version this reader does not parse)."""
    raw.seek(info.header_offset)
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ValueError(f"{info.filename}: not a zip member header at byte {info.header_offset}")
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    raw.seek(start)
    version = np.lib.format.read_magic(raw)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
    else:
        return None
    if dtype.hasobject:
        raise ValueError(f"{info.filename} holds Python objects; segue never loads pickled data")
    offset = raw.tell()
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0 or offset % dtype.alignment:
        return None
    if offset + count * dtype.itemsize > start + info.file_size:
        raise ValueError(f"{info.filename}: its array runs past the member's end (a truncated file?)")
    array = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C")
