"""The web tests' corpus: dated, categorised, upvoted papers, a hostile one, and an engine
over them in a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from paperradar.engine import Engine, make_engine
from paperradar.model import Author, Paper, Version
from paperradar.sources import Batch

# A week in March 2024: Mon 11 .. Fri 15 have papers; Sat 16 and Sun 17 none; Mon 18 the newest.
MON = datetime(2024, 3, 11, 14, 0, tzinfo=UTC)
NEWEST_DAY = "2024-03-18"
HOSTILE_TITLE = (
    '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> '
    "Attention &amp; &lt;b&gt;bold&lt;/b&gt; $\\mathcal{O}(n^2)$ \u05e9\u05dc\u05d5\u05dd "
    "\u0645\u0631\u062d\u0628\u0627"
)
HOSTILE_ABSTRACT = (
    "We study <iframe src=javascript:window.__pwned=3></iframe> and "
    "\"quoted\" 'single' & ampersands \u202eRTL override\u202c \x0b control char. "
    + "W" * 4096
    + " end."
)
HOSTILE_AUTHOR = "<b onmouseover=window.__pwned=4>Mallory</b> O'Hara & \u05e9\u05e8\u05d4"
HOSTILE_ID = "2403.06666"


def paper(
    arxiv: str,
    title: str,
    day: datetime,
    *,
    cats: tuple[str, ...] = ("cs.LG",),
    upvotes: int | None = None,
    authors: tuple[str, ...] = ("Ada Lovelace", "Alan Turing"),
    abstract: str = "",
    links: dict[str, str] | None = None,
) -> Paper:
    return Paper.from_ids(
        ids=[arxiv],
        title=title,
        source="test",
        abstract=abstract or f"We study {title.lower()} with transformers and diffusion models.",
        authors=[Author(a, ["Analytical Engine Lab"]) for a in authors],
        categories=list(cats),
        primary_category=cats[0],
        published=day,
        updated=day + timedelta(days=2),
        upvotes=upvotes,
        links=links or {},
        versions=[Version(1, day, "1 MB"), Version(2, day + timedelta(days=2), "1 MB")],
    )


def dated_papers() -> list[Paper]:
    out = []
    n = 1
    for offset in range(5):  # Mon..Fri
        day = MON + timedelta(days=offset)
        for i in range(3):
            cats = ("cs.CV", "cs.LG") if i == 0 else ("cs.LG",) if i == 1 else ("math.OC",)
            out.append(
                paper(
                    f"2403.{n:05d}v2",
                    f"Paper {n} on {'diffusion' if i == 0 else 'graphs'} day {offset}",
                    day,
                    cats=cats,
                    upvotes=(n * 7) % 23,
                    links={"code": f"https://github.com/example/p{n}"} if i == 0 else None,
                )
            )
            n += 1
    newest = MON + timedelta(days=7)
    for i in range(30):  # enough to page through on the newest day
        out.append(
            paper(
                f"2403.{100 + i:05d}",
                f"Scaling diffusion transformers part {i}",
                newest + timedelta(minutes=i),
                upvotes=i,
            )
        )
    out.append(
        paper(
            "hep-th/9901001",
            "Old style identifiers still resolve",
            datetime(1999, 1, 4, tzinfo=UTC),
            cats=("hep-th",),
            authors=("Edward Witten",),
        )
    )
    recent = datetime.now(UTC) - timedelta(hours=3)
    out.append(paper("2501.00001", "Trending now: retrieval", recent, upvotes=99))
    out.append(
        paper(
            HOSTILE_ID,
            HOSTILE_TITLE,
            MON + timedelta(days=1),
            authors=(HOSTILE_AUTHOR,),
            abstract=HOSTILE_ABSTRACT,
            links={"code": "javascript:window.__pwned=5"},
        )
    )
    return out


def build_engine(path: Path, **settings: object) -> Engine:
    engine = make_engine(str(path), **settings)
    engine.ingest([Batch("test", list(dated_papers()))])
    title_only = Paper.from_ids(title="A paper known only by its title", source="test")
    engine.ingest([Batch("test", [title_only])])
    return engine
