"""A strict, I/O-free reader of server-sent events, by the WHATWG event-stream rules.

`feed(bytes)` returns the events completed so far and `close()` the last ones, so bytes can arrive split
anywhere: inside a line, a CRLF pair, or a multi-byte character. Lines end with CRLF, LF or CR (never the
other breaks that `str.splitlines` knows). Where a browser would silently skip something (a line that is
neither a field nor a comment, bytes that are not UTF-8, a last event with no blank line after it), the
reader still does what the standard says and also records an `Issue`, so a checker can report it.

Whatever the stream, reading it takes time and memory in proportion to its bytes: a line that never ends is
held in the pieces it came in and joined once, when it ends; at most `MAX_ISSUES` issues are kept (the rest
are counted); and a reader given a `limit` keeps no line and no event's data past that many characters.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

__all__ = ["MAX_ISSUES", "Event", "Issue", "SSEDecoder"]

_FIELDS = ("data", "event", "id", "retry")
MAX_ISSUES = 100
"""Issues kept per stream: a stream of a million bad lines says so with a count, not a million messages."""


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event: `data` is its data lines joined with newlines; `line` is where it began (1-based)."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Issue:
    """Something the standard tolerates but a conformant server does not send. `kind`: field, utf8, unterminated."""

    kind: str
    line: int
    message: str


@dataclass
class _Pending:
    data: list[str] = field(default_factory=list)
    held: int = 0
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    line: int = 0


class SSEDecoder:
    """Incremental event-stream parser; see the module docstring. One decoder reads one stream.

    `limit`, when given, is the most characters kept of any line and of any event's data (the rest is dropped):
    for reading an excerpt of a stream, where only the first part of each event is shown.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._partial: list[str] = []  # the line in progress, in the pieces it arrived in
        self._held = 0  # characters in `_partial`
        self._started = False
        self._line = 0
        self._pending = _Pending()
        self._closed = False
        self._limit = limit
        self.issues: list[Issue] = []
        self.more_issues = 0
        self.comments = 0

    def feed(self, data: bytes) -> list[Event]:
        return self._lines(self._decode(data, final=False), final=False)

    def close(self) -> list[Event]:
        """The events still pending at the end of the stream, including a last one with no blank line after it."""
        if self._closed:
            return []
        self._closed = True
        events = self._lines(self._decode(b"", final=True), final=True)
        if self._pending.data:
            self._issue(
                Issue(
                    "unterminated",
                    self._pending.line,
                    "the stream ended without the blank line that ends its last event "
                    "(a browser's EventSource would drop that event)",
                )
            )
            events += self._dispatch()
        return events

    def _issue(self, issue: Issue) -> None:
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(issue)
        else:
            self.more_issues += 1

    def _decode(self, data: bytes, *, final: bool) -> str:
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            self._issue(
                Issue(
                    "utf8",
                    self._line + 1,
                    f"the stream is not valid UTF-8: {exc.reason} at byte {exc.start} of a chunk; read as U+FFFD",
                )
            )
            self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            return data.decode("utf-8", errors="replace")

    def _hold(self, text: str) -> None:
        """Keep `text` as more of the line in progress, up to the limit."""
        if self._limit is not None and self._held + len(text) > self._limit:
            # What is past the limit goes, but a last CR stays: it may be the first half of a CRLF.
            text = text[: max(0, self._limit - self._held)] + ("\r" if text.endswith("\r") else "")
        if text:
            self._partial.append(text)
            self._held += len(text)

    def _lines(self, text: str, *, final: bool) -> list[Event]:
        if not self._started and (text or final):
            if text.startswith("\ufeff"):
                text = text[1:]
            self._started = bool(text) or final
        held_cr = bool(self._partial) and self._partial[-1].endswith("\r")
        if not final and not held_cr and "\n" not in text and "\r" not in text:
            self._hold(text)  # no line ends here: nothing to scan again when the line does end
            return []
        buffer = "".join(self._partial) + text
        self._partial, self._held = [], 0
        events: list[Event] = []
        if "\r" not in buffer:  # lines that end with LF alone, as nearly every server writes them: split at once
            *lines, rest = buffer.split("\n")
            for line in lines:
                events += self._line_done(line)
            return self._rest(rest, events, final=final)
        start = 0
        length = len(buffer)
        lf = buffer.find("\n")
        cr = buffer.find("\r")
        while start < length:
            # Each search starts where the last one found something, so the scan is linear however many lines.
            if 0 <= lf < start:
                lf = buffer.find("\n", start)
            if 0 <= cr < start:
                cr = buffer.find("\r", start)
            if lf < 0 and cr < 0:
                break
            end = lf if cr < 0 or (lf >= 0 and lf < cr) else cr
            if buffer[end] == "\r":
                if end + 1 >= length and not final:
                    break  # a CR at the end of what arrived may be the first half of CRLF
                step = 2 if end + 1 < length and buffer[end + 1] == "\n" else 1
            else:
                step = 1
            events += self._line_done(buffer[start:end])
            start = end + step
        return self._rest(buffer[start:], events, final=final)

    def _rest(self, rest: str, events: list[Event], *, final: bool) -> list[Event]:
        """What follows the last line end: the last line at the end of the stream, else the start of the next."""
        if final and rest:
            events += self._line_done(rest)
        elif rest:
            self._hold(rest)
        return events

    def _line_done(self, line: str) -> list[Event]:
        self._line += 1
        if self._limit is not None:
            line = line[: self._limit]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return []
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        pending = self._pending
        if name in _FIELDS and not pending.line:
            pending.line = self._line
        if name == "data":
            if self._limit is not None:
                value = value[: max(0, self._limit - pending.held)]
            pending.data.append(value)
            pending.held += len(value) + 1
        elif name == "event":
            pending.event = value
        elif name == "id":
            if "\0" not in value:
                pending.id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                pending.retry = int(value)
            else:
                self._issue(Issue("field", self._line, f"retry must be digits; got {value[:80]!r}"))
        else:
            shown = line if len(line) <= 120 else line[:117] + "..."
            self._issue(
                Issue(
                    "field",
                    self._line,
                    f"line {self._line} is neither a field ({', '.join(_FIELDS)}) nor a comment: {shown!r}",
                )
            )
        return []

    def _dispatch(self) -> list[Event]:
        pending, self._pending = self._pending, _Pending()
        if not pending.data:
            return []  # the standard drops an event with no data lines
        return [Event("\n".join(pending.data), pending.event, pending.id, pending.retry, pending.line)]
