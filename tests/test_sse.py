"""The strict SSE reader: any legal framing, split anywhere, reads back the same events; junk never crashes it."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sse import Event, SSEDecoder

LINE_TEXT = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


@dataclass
class Spec:
    data: list[str]
    event: str | None
    id: str | None


specs = st.builds(
    Spec,
    data=st.lists(LINE_TEXT, min_size=1, max_size=3),
    event=st.none() | LINE_TEXT,
    id=st.none() | LINE_TEXT.filter(lambda s: "\0" not in s),
)


def read(raw: bytes, cuts: list[int]) -> tuple[list[Event], SSEDecoder]:
    decoder = SSEDecoder()
    events: list[Event] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(raw[last:cut])
        last = cut
    events += decoder.feed(raw[last:])
    events += decoder.close()
    return events, decoder


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Spec], bytes, bool]:
    """Events serialised with any legal line ends and comments, maybe a BOM, maybe no blank line at the end."""
    events = draw(st.lists(specs, min_size=1, max_size=6))
    unterminated = draw(st.booleans())
    lines: list[str] = []
    for spec in events:
        if draw(st.booleans()):
            lines.append(":" + draw(LINE_TEXT))
        if spec.event is not None:
            lines.append("event: " + spec.event)
        lines += ["data: " + line for line in spec.data]
        if spec.id is not None:
            lines.append("id: " + spec.id)
        lines.append("")
    if unterminated:
        lines.pop()
    text = "\ufeff" if draw(st.booleans()) else ""
    previous = ""
    for i, line in enumerate(lines):
        ending = draw(ENDINGS)
        if previous == "\r" and line == "" and ending == "\n":
            ending = "\r\n"  # a CR then a lone LF is one CRLF line end: that would swallow the blank line
        if unterminated and i == len(lines) - 1 and draw(st.booleans()):
            ending = ""
        text += line + ending
        previous = ending
    return events, text.encode("utf-8"), unterminated


@settings(max_examples=300, deadline=None)
@given(streams(), st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_legal_framing_split_anywhere_reads_back_the_same_events(
    stream: tuple[list[Spec], bytes, bool], cuts: list[int]
) -> None:
    specs_, raw, unterminated = stream
    events, decoder = read(raw, [c for c in cuts if c <= len(raw)])
    assert [(e.data, e.event, e.id) for e in events] == [("\n".join(s.data), s.event, s.id) for s in specs_]
    kinds = {i.kind for i in decoder.issues}
    assert kinds == ({"unterminated"} if unterminated else set())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_random_bytes_only_ever_yield_events_or_issues(raw: bytes, cuts: list[int]) -> None:
    events, decoder = read(raw, [c for c in cuts if c <= len(raw)])
    assert all(isinstance(e.data, str) for e in events)
    assert all(i.kind in ("field", "utf8", "unterminated") for i in decoder.issues)


def test_a_multibyte_character_split_across_chunks() -> None:
    raw = 'data: {"content": "日本 🎒"}\n\n'.encode()
    cut = raw.index("🎒".encode()) + 2
    events, decoder = read(raw, [cut, cut + 1])
    assert [e.data for e in events] == ['{"content": "日本 🎒"}'] and decoder.issues == []


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    events, decoder = read(b"data: a\r\n\r\ndata: b\r\n\r\n", [8, 10])
    assert [e.data for e in events] == ["a", "b"] and decoder.issues == []


def test_a_line_outside_the_framing_is_an_issue_and_the_rest_still_reads() -> None:
    raw = b'data: {"a": 1}\n\n{"error": {"message": "upstream cancelled"}}\n\ndata: [DONE]\n\n'
    events, decoder = read(raw, [])
    assert [e.data for e in events] == ['{"a": 1}', "[DONE]"]
    assert [(i.kind, i.line) for i in decoder.issues] == [("field", 3)]
    assert "upstream cancelled" in decoder.issues[0].message


def test_invalid_utf8_is_an_issue() -> None:
    events, decoder = read(b"data: \xff\xfe\n\n", [])
    assert len(events) == 1 and [i.kind for i in decoder.issues] == ["utf8"]


def test_fields_comments_and_retry() -> None:
    events, decoder = read(b": hello\nevent: message\nid: 7\nretry: 1000\ndata:x\ndata\n\nretry: soon\ndata: y\n\n", [])
    assert events[0] == Event("x\n", "message", "7", 1000, 2)
    assert decoder.comments == 1
    assert [i.kind for i in decoder.issues] == ["field"] and "retry" in decoder.issues[0].message
