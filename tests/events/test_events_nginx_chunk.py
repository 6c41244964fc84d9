"""The whole-chunk nginx parser agrees with the line-by-line parser on every chunk it accepts.

The line path (:func:`mamori.events.parse_lines`) is the oracle: whenever ``parse_nginx_chunk`` returns
events instead of None, every line must parse there too, to the same canonical rows. Lines are drawn near
the two layouts the chunk parser takes (plain combined and the writer's), then mutated: extra or missing
quotes, tabs, key=value tails, odd users, times, statuses and escapes.
"""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mamori.events import conform, parse_lines
from mamori.events._parsers import parse_nginx_chunk

_TAILS_WRITER = (
    ' request_time=0.120 request_length=512 remote_port=40112 host="api.bank.example" '
    'request_id="r-1" ja3="771,4865-4866" msec=1777593601.003'
)


def _pick(draw: st.DrawFn, clean: bool, valid: list[str], odd: list[str]) -> str:
    return draw(st.sampled_from(valid if clean else valid + odd))


@st.composite
def nginx_line(draw: st.DrawFn) -> str:
    clean = draw(st.integers(0, 9)) < 7  # most lines valid, so that chunks are accepted and compared
    ip = _pick(draw, clean, ["10.0.0.1", "2001:db8::1", "-"], ["a[b", 'x"y'])
    ident = _pick(draw, clean, ["-", "id"], ["[x"])
    user = _pick(draw, clean, ["-", "alice", "b\\x22ob", "u=1"], [])
    time = _pick(
        draw, clean, ["01/May/2026:09:00:00 +0900", "31/Dec/2025:23:59:59 -0130"], ["32/May/2026:09:00:00 +0900", "x"]
    )
    method = _pick(draw, clean, ["GET", "POST", "G?T"], [""])
    target = _pick(draw, clean, ["/", "/a?b=1&c", "*", "/p%20q", "/x\\x22y", "/\\\\"], ["http://h/x"])
    version = _pick(draw, clean, [" HTTP/1.1", " HTTP/2"], ["", " HTTP/x", " HTTP/1.1 extra"])
    status = _pick(draw, clean, ["200", "-", "404"], ["99", "2000", "\u0662\u0660\u0660"])
    size = _pick(draw, clean, ["0", "-", "123456"], ["99999999999999999999"])
    ref = _pick(draw, clean, ["-", "https://r/", "a\\x5Cb"], ['q"q'])
    ua = _pick(draw, clean, ["curl/8", "Mozilla/5.0 (X11; Linux)", "-", "", 'u\\" a'], ['u\\"a'])
    tail = _pick(draw, clean, ["", ' "1.2.3.4"', " extra", "\textra", ' "-" "x"', _TAILS_WRITER], ['""', " rt=0.1"])
    line = f'{ip} {ident} {user} [{time}] "{method} {target}{version}" {status} {size} "{ref}" "{ua}"{tail}'
    mutation = "none" if clean else draw(st.sampled_from(["none", "drop_quote", "add_quote", "tab", "cut"]))
    if mutation == "drop_quote" and '"' in line:
        at = draw(st.sampled_from([i for i, c in enumerate(line) if c == '"']))
        line = line[:at] + line[at + 1 :]
    elif mutation == "add_quote":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + '"' + line[at:]
    elif mutation == "tab":
        line = line.replace(" ", "\t", 1)
    elif mutation == "cut":
        line = line[: draw(st.integers(0, len(line)))]
    return line


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(nginx_line(), min_size=1, max_size=6), copies=st.integers(1, 3))
def test_chunk_parser_agrees_with_line_parser(lines: list[str], copies: int) -> None:
    lines = lines * copies
    raw = "\n".join(lines).encode("utf-8")
    chunk = parse_nginx_chunk(raw, 1, 1 << 20)
    if chunk is None:
        return
    good, rejected = parse_lines(lines, "nginx")
    assert rejected.height == 0, rejected.to_dicts()
    assert_frame_equal(conform(chunk), good)


def test_chunk_parser_takes_plain_combined_and_main() -> None:
    lines = [
        '10.0.0.1 - - [01/May/2026:09:00:00 +0900] "GET /a?b=1 HTTP/1.1" 200 12 "-" "curl/8"',
        '10.0.0.2 - alice [01/May/2026:09:00:01 +0900] "POST /login HTTP/2" 302 - "https://r/" "Mozilla/5.0 (X)"',
        '10.0.0.3 - - [01/May/2026:09:00:02 +0900] "GET / HTTP/1.1" 200 0 "-" "curl/8" "203.0.113.9"',
    ]
    chunk = parse_nginx_chunk("\n".join(lines).encode(), 1, 1 << 20)
    assert chunk is not None
    assert chunk.height == 3
    assert chunk.get_column("user.name").to_list() == [None, "alice", None]
    assert chunk.get_column("url.query").to_list() == ["b=1", None, None]
    good, rejected = parse_lines(lines, "nginx")
    assert rejected.height == 0
    assert_frame_equal(conform(chunk), good)


def test_chunk_parser_refuses_compensating_quote_counts() -> None:
    # one line a quote short, the next a quote long: the chunk's total length still adds up, each line does not
    short = '10.0.0.1 - - [01/May/2026:09:00:00 +0900] "GET / HTTP/1.1" 200 1 "-" "curl/8'
    long = '10.0.0.1 - - [01/May/2026:09:00:00 +0900] "GET / HTTP/1.1" 200 1 "-" "curl/8""'
    assert parse_nginx_chunk(f"{short}\n{long}".encode(), 1, 1 << 20) is None
    _good, rejected = parse_lines([short, long], "nginx")
    assert rejected.height == 2
    assert pl.Series(rejected.get_column("line_no")).to_list() == [1, 2]
