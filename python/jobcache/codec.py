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
# A stored result in pieces (schema 11, docs/format.md "Large results"): ext 7
# wraps its skeleton, in which ext 8 refers to each part stored apart.
EXT_PIECES = 7
EXT_PIECE = 8
_PIECE_STR = 0x10
_PIECE_BIN = 0x11

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


def decode(blob, use_numpy=True, extra=None):
    """Decodes one stored value (an argument list or a result). extra maps
    further ext codes to their decoders (decode_pieces' references)."""

    def ext_hook(code, data):
        if extra and code in extra:
            return extra[code](data)
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


def in_pieces(blob):
    """Whether a stored result is a skeleton in pieces (an ext 7)."""
    b = bytes(blob[:6])
    return len(blob) >= 4 and ((b[0] == 0xc7 and b[2] == EXT_PIECES) or
                               (b[0] == 0xc8 and len(blob) >= 5 and b[3] == EXT_PIECES) or
                               (b[0] == 0xc9 and len(blob) >= 7 and b[5] == EXT_PIECES))


_FIXED = {0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8,
          0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}


def _ref_offsets(skel):
    """The offsets of the ext 8 references in a skeleton, in order: a walk
    of its MessagePack headers (the values are decoded by msgpack)."""
    out, i, left, n = [], 0, 1, len(skel)

    def be(at, k):
        if at + k > n:
            raise DecodeError("truncated skeleton")
        return int.from_bytes(skel[at:at + k], "big")

    while left:
        if i >= n:
            raise DecodeError("truncated skeleton")
        c = skel[i]
        left -= 1
        if c <= 0x7f or c >= 0xe0:
            i += 1
        elif c <= 0x8f:
            left += 2 * (c & 0x0f)
            i += 1
        elif c <= 0x9f:
            left += c & 0x0f
            i += 1
        elif c <= 0xbf:
            i += 1 + (c & 0x1f)
        elif c in _FIXED:
            i += 1 + _FIXED[c]
        elif c in (0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb):
            k = {0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4}[c]
            i += 1 + k + be(i + 1, k)
        elif c in (0xc7, 0xc8, 0xc9):
            k = {0xc7: 1, 0xc8: 2, 0xc9: 4}[c]
            length = be(i + 1, k)
            if be(i + 1 + k, 1) == EXT_PIECE:
                if c != 0xc7 or length != 13:  # always c7 0d 08, as the C reader requires
                    raise DecodeError("malformed piece reference")
                out.append(i)
            i += 2 + k + length
        elif 0xd4 <= c <= 0xd8:
            i += 2 + (1 << (c - 0xd4))
        elif c in (0xdc, 0xdd):
            k = 2 if c == 0xdc else 4
            left += be(i + 1, k)
            i += 1 + k
        elif c in (0xde, 0xdf):
            k = 2 if c == 0xde else 4
            left += 2 * be(i + 1, k)
            i += 1 + k
        else:
            raise DecodeError("malformed skeleton (byte 0x%02x)" % c)
    return out


def _header(kind, length):
    """The MessagePack header an unsplit result gives a part of this kind."""
    if kind == _PIECE_STR:
        if length < 32:
            return bytes([0xa0 | length])
        forms = ((0xd9, 1), (0xda, 2), (0xdb, 4))
    elif kind == _PIECE_BIN:
        forms = ((0xc4, 1), (0xc5, 2), (0xc6, 4))
    else:
        fix = {1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}
        if length in fix:
            return bytes([fix[length], kind])
        forms = ((0xc7, 1), (0xc8, 2), (0xc9, 4))
    for code, k in forms:
        if length < 1 << (8 * k):
            head = bytes([code]) + length.to_bytes(k, "big")
            return head if kind in (_PIECE_STR, _PIECE_BIN) else head + bytes([kind])
    raise DecodeError("part of %d bytes is too long" % length)


def decode_pieces(blob, read_part, use_numpy=True, hasher=None):
    """Decodes a result in pieces. read_part(part, length) returns the bytes
    of part number ``part``; hasher, when given (an XXH3-128 object), is fed
    the result's exact encoding, which its checksum covers."""
    blob = bytes(blob)
    k = {0xc7: 1, 0xc8: 2, 0xc9: 4}[blob[0]]
    size = int.from_bytes(blob[1:1 + k], "big")
    body = blob[2 + k:]
    if size != len(body) or size < 2:
        raise DecodeError("malformed result in pieces")
    if body[0] != 1:
        raise DecodeError("result in pieces of an unknown version %d" % body[0])
    skel = body[1:]
    offsets = _ref_offsets(skel)
    parts = []

    def piece(data):
        if len(data) != 13:
            raise DecodeError("malformed piece reference")
        kind, part, length = data[0], int.from_bytes(data[1:5], "little"), int.from_bytes(data[5:13], "little")
        if part != len(parts):
            raise DecodeError("pieces out of order")
        raw = read_part(part, length)
        if len(raw) != length:
            raise DecodeError("part %d holds %d bytes, not %d" % (part, len(raw), length))
        parts.append((kind, raw))
        if kind == _PIECE_STR:
            if b"\0" in raw:
                raise DecodeError("a string contains a NUL byte")
            return bytes(raw).decode("utf-8", "surrogateescape")
        if kind == _PIECE_BIN:
            return bytes(raw)
        if kind in (EXT_DOUBLES, EXT_INTS):
            return _typed(raw, kind, use_numpy)
        raise DecodeError("malformed piece reference")

    value = decode(skel, use_numpy, extra={EXT_PIECE: piece})
    if len(parts) != len(offsets):
        raise DecodeError("malformed result in pieces")
    if hasher is not None:
        at = 0
        for off, (kind, raw) in zip(offsets, parts):
            hasher.update(skel[at:off])
            hasher.update(_header(kind, len(raw)))
            hasher.update(raw)
            at = off + 16
        hasher.update(skel[at:])
    return value
