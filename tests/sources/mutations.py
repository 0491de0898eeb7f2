"""Hypothesis strategies that damage real fixtures, and the one property every parser keeps:
only Paper / ParseProblem come out, or a SourceError is raised, never anything else."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hypothesis import strategies as st

from paperradar.errors import SourceError
from paperradar.model import Paper, ParseProblem


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random edits: truncate, delete, insert, flip bits, duplicate."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "delete", "insert", "flip", "dup", "swapchar"]))
        n = len(out)
        if n == 0:
            out += draw(st.binary(min_size=1, max_size=20))
            continue
        i = draw(st.integers(0, n - 1))
        if kind == "truncate":
            del out[i:]
        elif kind == "delete":
            del out[i : i + draw(st.integers(1, 64))]
        elif kind == "insert":
            out[i:i] = draw(
                st.one_of(
                    st.binary(min_size=1, max_size=16),
                    st.sampled_from(
                        [
                            b"<",
                            b">",
                            b"&",
                            b'"',
                            b"{",
                            b"}",
                            b"@",
                            b"\\",
                            b"\n",
                            b"null",
                            b"[]",
                            b"\xff\xfe",
                            b"<!DOCTYPE x>",
                            b"\x00",
                        ]
                    ),
                )
            )
        elif kind == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "dup":
            j = draw(st.integers(i, min(n, i + 200)))
            out[j:j] = out[i:j]
        else:
            out[i] = draw(st.sampled_from(b'{}[]<>",:0a \n'))
    return bytes(out)


def check_parser(parse: Callable[[bytes], Iterable[object]], data: bytes) -> int:
    """Run ``parse`` on ``data``; assert the contract; return how many papers came out."""
    papers = 0
    try:
        for rec in parse(data):
            assert isinstance(rec, Paper | ParseProblem), type(rec)
            if isinstance(rec, Paper):
                papers += 1
                assert rec.id and isinstance(rec.title, str)
            else:
                assert rec.source and rec.message
    except SourceError as exc:
        assert str(exc)
    return papers
