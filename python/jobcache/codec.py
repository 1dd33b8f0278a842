"""Decoding of jobcache's stored values (docs/format.md, key format 1).

A stored value is MessagePack with six extension types:

- 1: an array of doubles, little-endian float64 elements;
- 2: an array of int64, little-endian elements;
- 3: the digest of a large argument (25 bytes: kind 1 doubles / 2 ints /
  3 bytes, the length as a little-endian uint64, the XXH3-128 of the
  payload in canonical big-endian form). Only found in stored arguments.
- 4: a file or directory argument by its content (18 bytes: version 1,
  kind 1 file / 2 directory, XXH3-128 digest): a FileDigest.
- 5: an argument left out of the key (1 byte: version 1): LEFT_OUT.
- 6: another call's result as an argument (jc_use; 17 bytes: version 1,
  the XXH3-128 digest of the result, which is the checksum of the entry
  that holds it): a Ref. docs/pipelines.md.

Typed arrays become numpy arrays when numpy is importable, else
array.array ('d' or 'q'). Everything else maps to the obvious Python type:
nil None, bool, int, float (exact bits, -0.0 and NaN payloads included),
str, bytes, list, dict.
"""

import array
import struct
import sys

import msgpack

try:  # optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _np = None

EXT_DOUBLES = 1
EXT_INTS = 2
EXT_DIGEST = 3
EXT_FILE = 4
EXT_LEFT_OUT = 5
EXT_REF = 6

_KINDS = {1: "doubles", 2: "ints", 3: "bytes"}


class DecodeError(ValueError):
    """A stored value that is not valid key-format-1 MessagePack."""


class Digest:
    """The placeholder of a large argument (64 KiB or more) that the cache
    stores as its kind, length and XXH3-128 digest instead of a copy.

    ``kind`` is "doubles", "ints" or "bytes"; ``length`` counts elements
    (bytes for "bytes"); ``xxh3`` is the 16-byte digest of the canonical
    payload. Two digests are equal when all three are; a digest is hashable.
    """

    __slots__ = ("kind", "length", "xxh3")

    def __init__(self, kind, length, xxh3):
        self.kind = kind
        self.length = length
        self.xxh3 = bytes(xxh3)

    @classmethod
    def from_ext(cls, data):
        if len(data) != 25 or data[0] not in _KINDS:
            raise DecodeError("ext 3 (large-argument digest) must be 25 bytes with a kind of 1 to 3, "
                              "got %d bytes" % len(data))
        (length,) = struct.unpack_from("<Q", data, 1)
        return cls(_KINDS[data[0]], length, data[9:25])

    def __eq__(self, other):
        if not isinstance(other, Digest):
            return NotImplemented
        return (self.kind, self.length, self.xxh3) == (other.kind, other.length, other.xxh3)

    def __hash__(self):
        return hash((self.kind, self.length, self.xxh3))

    def __repr__(self):
        # The same text as the C library's jc_value_format and `jobcache show`.
        return "<%s[%d] xxh3 %s>" % (self.kind, self.length, self.xxh3.hex())

    __str__ = __repr__


class FileDigest:
    """A file or directory argument as the cache keeps it: ``kind`` "file"
    or "directory", ``xxh3`` the 16-byte digest of its content (of a
    directory, of its entries: docs/format.md). The path is not kept."""

    __slots__ = ("kind", "xxh3")

    def __init__(self, kind, xxh3):
        self.kind = kind
        self.xxh3 = bytes(xxh3)

    @classmethod
    def from_ext(cls, data):
        if len(data) != 18 or data[0] != 1 or data[1] not in (1, 2):
            raise DecodeError("ext 4 (file digest) must be 18 bytes of version 1, kind 1 or 2")
        return cls("file" if data[1] == 1 else "directory", data[2:18])

    def __eq__(self, other):
        if not isinstance(other, FileDigest):
            return NotImplemented
        return (self.kind, self.xxh3) == (other.kind, other.xxh3)

    def __hash__(self):
        return hash((self.kind, self.xxh3))

    def __repr__(self):
        return "<%s xxh3 %s>" % (self.kind, self.xxh3.hex())

    __str__ = __repr__


class Ref:
    """Another call's result as an argument (a pipeline's jc_use): ``xxh3``
    is the 16-byte digest of that result, the checksum of the entry holding
    it (Cache.by_result finds it while it is in the cache)."""

    __slots__ = ("xxh3",)

    def __init__(self, xxh3):
        self.xxh3 = bytes(xxh3)

    @classmethod
    def from_ext(cls, data):
        if len(data) != 17 or data[0] != 1:
            raise DecodeError("ext 6 (reference) must be 17 bytes of version 1")
        return cls(data[1:17])

    def __eq__(self, other):
        if not isinstance(other, Ref):
            return NotImplemented
        return self.xxh3 == other.xxh3

    def __hash__(self):
        return hash(self.xxh3)

    def __repr__(self):
        return "<result xxh3 %s>" % self.xxh3.hex()

    __str__ = __repr__


class _LeftOut:
    """The placeholder of an argument left out of the key (JC_LEAVE_OUT)."""

    __slots__ = ()

    def __repr__(self):
        return "<left out>"

    __str__ = __repr__


LEFT_OUT = _LeftOut()


def _typed(data, code, use_numpy):
    if len(data) % 8:
        raise DecodeError("ext %d (typed array) payload of %d bytes is not a multiple of 8"
                          % (code, len(data)))
    if use_numpy and _np is not None:
        # A copy: the array must not keep the whole blob alive, and may be written.
        return _np.frombuffer(data, dtype="<f8" if code == EXT_DOUBLES else "<i8").astype(
            _np.float64 if code == EXT_DOUBLES else _np.int64)
    a = array.array("d" if code == EXT_DOUBLES else "q")
    a.frombytes(data)
    if sys.byteorder == "big":  # pragma: no cover
        a.byteswap()
    return a


def decode(blob, use_numpy=True):
    """Decodes one stored value (an argument list or a result)."""

    def ext_hook(code, data):
        if code in (EXT_DOUBLES, EXT_INTS):
            return _typed(data, code, use_numpy)
        if code == EXT_DIGEST:
            return Digest.from_ext(data)
        if code == EXT_FILE:
            return FileDigest.from_ext(data)
        if code == EXT_LEFT_OUT:
            if bytes(data) != b"\x01":
                raise DecodeError("ext 5 (left-out argument) must be the byte 1")
            return LEFT_OUT
        if code == EXT_REF:
            return Ref.from_ext(data)
        raise DecodeError("unknown ext type %d (key format 1 knows 1 to 6)" % code)

    try:
        # surrogateescape: text written before jobcache checked UTF-8 still
        # decodes, byte for byte, as the C decoder reads it.
        return msgpack.unpackb(bytes(blob), raw=False, ext_hook=ext_hook, strict_map_key=True,
                               unicode_errors="surrogateescape", use_list=True)
    except DecodeError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise DecodeError("malformed stored value: %s" % e) from None
