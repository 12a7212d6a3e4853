"""Content-Encoding decoded in bounded pieces, so that the size cap applies to the decoded bytes as they come out.

httpx decodes a whole network read at once: 64 KiB of gzip can expand to 64 MiB (and a few hundred bytes of
brotli to gigabytes) before its caller sees a byte, so a cap counted on what httpx yields comes after the memory
is spent. Here the raw bytes are decoded a piece of at most `PIECE` bytes at a time, and the reader counts each
piece and stops at the cap: a compression bomb costs what the cap allows and no more. Only the encodings that can
be decoded this way are asked for (`ACCEPT`); an answer in another one is kept as it came, and said to be so.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["ACCEPT", "PIECE", "Decoder", "Undecodable", "decoder_for"]

PIECE = 64 * 1024
"""The most bytes one decoding step produces (brotli's decoder works in blocks and may give up to twice as many):
what a decoded answer can overshoot the cap by."""


def _bounded_brotli() -> Any:
    """The brotli module if it can decode with its output bounded (Brotli 1.2 or brotlicffi 1.2), else None."""
    for name in ("brotli", "brotlicffi"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        if hasattr(module.Decompressor, "can_accept_more_data"):
            return module
    return None


_BROTLI = _bounded_brotli()
ACCEPT = "gzip, deflate, br" if _BROTLI is not None else "gzip, deflate"
"""The Accept-Encoding the harness sends: only what `decoder_for` decodes in bounded pieces."""


class Undecodable(Exception):
    """The body is not what its Content-Encoding says (a corrupt gzip stream, say)."""


class Decoder(Protocol):
    """Turns raw bytes into decoded pieces of at most `PIECE` bytes each, lazily: a reader that stops early stops
    the decoding there."""

    def decode(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _Identity:
    def decode(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Zlib:
    """gzip (one member after another, as gzip allows) or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._wbits = zlib.MAX_WBITS | 16 if name == "gzip" else zlib.MAX_WBITS
        self._z = zlib.decompressobj(self._wbits)
        self._first = True
        self._after = b""  # bytes after the end of a gzip member: the start of the next one, or trailing garbage

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._z.eof:
            data = self._next_member(data)
        more = bool(data)
        while more:
            try:
                out = self._z.decompress(data, PIECE)
            except zlib.error as exc:
                if self._first and self._name == "deflate":  # raw deflate, without the zlib header
                    self._first = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise Undecodable(f"the body is not valid {self._name} as its Content-Encoding says ({exc})") from None
            self._first = False
            data = self._z.unconsumed_tail
            if out:
                yield out
            if self._z.eof:
                data = self._next_member(self._z.unused_data)
                more = bool(data)
            else:
                more = bool(data) or len(out) == PIECE  # a full piece may leave output pending inside zlib
        return

    def _next_member(self, data: bytes) -> bytes:
        """What to decode next once a member ended: the next gzip member, or nothing (trailing bytes are ignored,
        as httpx ignores them)."""
        self._after += data
        if self._name != "gzip" or len(self._after) < 2:
            self._after = self._after[:2]
            return b""
        if not self._after.startswith(b"\x1f\x8b"):
            self._after = b"--"  # not gzip: ignore everything after it
            return b""
        following, self._after = self._after, b""
        self._z = zlib.decompressobj(self._wbits)
        return following

    def flush(self) -> Iterator[bytes]:
        rest = self._z.flush() if not self._z.eof else b""
        for start in range(0, len(rest), PIECE):
            yield rest[start : start + PIECE]


class _Brotli:
    def __init__(self) -> None:
        self._d = _BROTLI.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self._d.process(data, output_buffer_limit=PIECE)
            while True:
                if out:
                    yield out
                if self._d.can_accept_more_data() or not out:
                    return
                out = self._d.process(b"", output_buffer_limit=PIECE)
        except _BROTLI.error as exc:
            raise Undecodable(f"the body is not valid br as its Content-Encoding says ({exc})") from None

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Chain:
    """Encodings applied one after another (`Content-Encoding: gzip, br`), undone in the reverse order."""

    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, data)

    def _through(self, at: int, data: bytes) -> Iterator[bytes]:
        if at == len(self._decoders):
            yield data
            return
        for piece in self._decoders[at].decode(data):
            yield from self._through(at + 1, piece)

    def flush(self) -> Iterator[bytes]:
        for at, decoder in enumerate(self._decoders):
            for piece in decoder.flush():
                yield from self._through(at + 1, piece)


def decoder_for(content_encoding: str | None) -> tuple[Decoder, str | None]:
    """The decoder for a Content-Encoding header, and the encoding it leaves undone (None when it decodes all).

    An encoding the harness did not ask for and cannot decode in bounded pieces (zstd, br without Brotli 1.2,
    compress) leaves the body as it came: the checks then see bytes that are no JSON, and the exchange says why.
    """
    names = [n.strip().lower() for n in (content_encoding or "").split(",")]
    names = [n for n in names if n and n != "identity"]
    decoders: list[Decoder] = []
    for name in reversed(names):
        if name in ("gzip", "x-gzip", "deflate"):
            decoders.append(_Zlib("gzip" if name == "x-gzip" else name))
        elif name == "br" and _BROTLI is not None:
            decoders.append(_Brotli())
        else:
            return _Identity(), ", ".join(names)
    if not decoders:
        return _Identity(), None
    return (decoders[0] if len(decoders) == 1 else _Chain(decoders)), None
