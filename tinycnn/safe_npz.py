"""Read an ``.npz`` archive without trusting it: headers first, sizes bounded, never pickle.

``np.load`` on a damaged or hostile file can fail with a dozen exception types
(``BadZipFile``, ``EOFError``, ``OSError``, ...) or try to allocate whatever a header declares.
:class:`SafeNpz` opens the zip itself and, before any array data is read,

1. recognises files that are not archives at all (empty, a directory, a ``.npy``, a PNG or
   JPEG image, gzip data) by their first bytes;
2. lists the entries: each must be a ``<name>.npy``, stored uncompressed (as ``np.savez``
   writes it), unencrypted, lying inside the file, with no duplicate names;
3. reads each entry's ``.npy`` header -- shape, dtype, Fortran order -- and checks that
   ``prod(shape) · itemsize`` bytes are exactly what the entry holds.

Every array's bytes are therefore bytes of the file: a header declaring a terabyte array in
a kilobyte file is refused in microseconds, and no compressed entry can expand into more
memory than the file occupies on disk (a "zip bomb").
:meth:`SafeNpz.read` then reads one array (the zip's CRC-32 is checked on the way). Every
problem is an :class:`NpzError` (a ``ValueError``) whose message says what is wrong.
"""
import math
import os
import zipfile

import numpy as np

__all__ = ["NpzError", "ArrayHeader", "SafeNpz", "sniff", "file_kind", "KINDS", "NPZ", "EMPTY"]

#: What a file is, from its first bytes: the one table both the model loader and the
#: command line's checks (``tinycnn/cli_checks.py``) use.
NPZ = "a .npz/zip archive"
KINDS = ((b"PK\x03\x04", NPZ), (b"PK\x05\x06", NPZ),        # a zip with entries; an empty zip
         (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
         (b"GIF8", "a GIF image"), (b"BM", "a BMP image"),
         (b"\x93NUMPY", "a NumPy .npy array"), (b"\x1f\x8b", "a gzip file"))
EMPTY = "an empty file"
_SWAPPED = "; were the model and the image swapped? (tinycnn predict MODEL IMAGE)"
# how sniff words a kind that is not an archive (default: "it is <kind>, not an .npz archive")
_REFUSALS = {
    EMPTY: "the file is empty (0 bytes)",
    "a PNG image": "it is a PNG image" + _SWAPPED,
    "a JPEG image": "it is a JPEG image" + _SWAPPED,
    "a NumPy .npy array": "it is a single .npy array, not an .npz archive; model files are written by model.save",
    "a gzip file": "it is gzip-compressed data, not an .npz archive",
}


class NpzError(ValueError):
    """The file is not a readable ``.npz`` of plain arrays; ``str(err)`` says why."""


class ArrayHeader:
    """What an entry's ``.npy`` header declares: ``shape``, ``dtype``, ``fortran_order``, ``nbytes``."""

    def __init__(self, name, shape, dtype, fortran_order, info, offset):
        self.name, self.shape, self.dtype, self.fortran_order = name, shape, dtype, fortran_order
        self.nbytes = math.prod(shape) * dtype.itemsize   # Python ints: no overflow
        self.info, self.offset = info, offset             # zip entry, where the data starts

    def __repr__(self):
        return f"ArrayHeader({self.name!r}, shape={self.shape}, dtype={self.dtype})"


def _head(path):
    with open(path, "rb") as f:
        return f.read(8)


def _kind(head):
    if not head:
        return EMPTY
    return next((kind for magic, kind in KINDS if head.startswith(magic)), None)


def file_kind(path):
    """What the file at ``path`` is from its first bytes: a kind of :data:`KINDS` (e.g.
    :data:`NPZ`, ``"a PNG image"``), :data:`EMPTY`, or None when unknown."""
    return _kind(_head(path))


def sniff(path):
    """Raise :class:`NpzError` if ``path`` is plainly not an ``.npz``: a directory, empty, an image..."""
    if os.path.isdir(path):
        raise NpzError("it is a directory, not a file")
    if not os.path.isfile(path):
        raise NpzError("it is not a regular file (a pipe or a device?)")
    head = _head(path)
    kind = _kind(head)
    if kind == NPZ:
        return
    if kind is None:
        raise NpzError(f"it is not an .npz (zip) archive (it starts with {head!r})")
    raise NpzError(_REFUSALS.get(kind, f"it is {kind}, not an .npz archive"))


class SafeNpz:
    """An ``.npz`` opened for checking: ``headers`` (name -> :class:`ArrayHeader`), then ``read``.

    Use as a context manager. Raises :class:`NpzError` for anything that is not a sound
    archive of plain ``.npy`` arrays; ``OSError`` only for I/O problems such as permissions.
    """

    def __init__(self, path):
        sniff(path)
        self._file = open(path, "rb")
        try:
            size = os.fstat(self._file.fileno()).st_size
            try:
                self._zip = zipfile.ZipFile(self._file)
                self.headers = self._read_headers(size)
            except NpzError:
                raise
            except Exception as err:  # zipfile/npy parsing of damaged bytes fails in many ways
                raise NpzError(f"the .npz (zip) archive is truncated or corrupted "
                               f"({type(err).__name__}: {err})") from None
        except BaseException:
            self._file.close()
            raise

    def _read_headers(self, size):
        headers = {}
        for info in self._zip.infolist():
            entry = info.filename
            if not entry.endswith(".npy") or entry.endswith("/"):
                raise NpzError(f"unexpected entry {entry[:80]!r} (an .npz holds only .npy arrays)")
            name = entry[:-4]
            if name in headers:
                raise NpzError(f"entry {entry[:80]!r} appears twice")
            if info.flag_bits & 0x1:
                raise NpzError(f"entry {entry[:80]!r} is encrypted")
            if info.compress_type != zipfile.ZIP_STORED:
                raise NpzError(f"entry {entry[:80]!r} is compressed (zip method {info.compress_type}); "
                               "model files store arrays uncompressed, as np.savez and model.save write them")
            if info.header_offset + info.compress_size > size:
                raise NpzError(f"entry {entry[:80]!r} claims {info.compress_size:,} bytes at offset "
                               f"{info.header_offset:,} of a {size:,}-byte file (truncated?)")
            if info.file_size != info.compress_size:
                raise NpzError(f"entry {entry[:80]!r} claims {info.file_size:,} bytes but stores "
                               f"{info.compress_size:,}")
            headers[name] = self._read_header(info, name)
        return headers

    def _read_header(self, info, name):
        with self._zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise NpzError(f"array {name[:80]!r} has .npy format version {version} (1.0 or 2.0 expected)")
            offset = f.tell()
        if dtype.hasobject:
            raise NpzError(f"array {name[:80]!r} holds Python objects (dtype {dtype}), i.e. pickled "
                           "data, which is never loaded")
        if dtype.fields is not None or dtype.subdtype is not None:
            raise NpzError(f"array {name[:80]!r} has a structured dtype {dtype} (plain arrays expected)")
        header = ArrayHeader(name, tuple(int(n) for n in shape), dtype, bool(fortran_order), info, offset)
        held = info.file_size - offset
        if header.nbytes != held:
            raise NpzError(f"array {name[:80]!r} declares shape {header.shape} of {dtype} "
                           f"({header.nbytes:,} bytes) but its entry holds {held:,} bytes")
        return header

    def read(self, name):
        """The array ``name`` (C order, native byte order, writeable); the CRC-32 is checked."""
        header = self.headers[name]
        try:
            with self._zip.open(header.info) as f:
                f.seek(header.offset)
                data = f.read(header.nbytes)
                if len(data) != header.nbytes or f.read(1):
                    raise NpzError(f"array {name[:80]!r}: entry holds {len(data):,} bytes, "
                                   f"{header.nbytes:,} declared")
        except NpzError:
            raise
        except Exception as err:   # BadZipFile("Bad CRC-32 ..."), EOFError, ...
            raise NpzError(f"array {name[:80]!r} is corrupted ({type(err).__name__}: {err})") from None
        order = "F" if header.fortran_order else "C"
        array = np.frombuffer(data, dtype=header.dtype).reshape(header.shape, order=order)
        return np.array(array, dtype=header.dtype.newbyteorder("="), order="C")

    def close(self):
        """Close the underlying file."""
        self._zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
