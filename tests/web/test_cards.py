"""The paper card built in Python (``web/cards.py``) is byte for byte what the Jinja2 macro it
replaced rendered (kept below as the reference), for every paper of the web corpus — the hostile
one included — and for papers with every optional part (many authors, counts, announcements,
unsafe links, no date), with and without query words and "why this matched"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markupsafe import Markup

from paperradar.engine import Engine
from paperradar.model import Author, Paper
from paperradar.web.cards import ANNOUNCE_LABELS
from paperradar.web.render import Renderer

REFERENCE_MACRO = '{% macro card(p, terms=(), why=None, heading=\'h2\') %}\n<article class="card" id="p-{{ p.id }}" tabindex="-1" aria-labelledby="t-{{ p.id }}">\n  <{{ heading }} class="title" id="t-{{ p.id }}" dir="auto"><a href="{{ paper_url(p.id) }}">{{ p.title|hl(terms) }}</a></{{ heading }}>\n  {% if p.authors %}\n  <p class="authors" dir="auto">\n  {% for a in p.authors[:12] %}<a href="{{ author_url(a.name) }}">{{ a.name }}</a>{% if not loop.last %}, {% endif %}{% endfor %}\n  {% if p.authors|length > 12 %} and {{ p.authors|length - 12 }} more{% endif %}\n  </p>\n  {% endif %}\n  <p class="meta">\n    {% if p.published %}<time datetime="{{ p.published|iso }}">{{ p.published|date }}</time>{% elif p.first_seen %}<span title="Collected on">seen <time datetime="{{ p.first_seen|iso }}">{{ p.first_seen|date }}</time></span>{% endif %}\n    {% for c in p.categories[:6] %}<a class="cat{% if c == p.primary_category %} primary{% endif %}" href="{{ category_url(c) }}">{{ c }}</a>{% endfor %}\n    {% if p.upvotes is not none %}<span class="count" title="Upvotes">▲ {{ p.upvotes }}</span>{% endif %}\n    {% if p.stars is not none %}<span class="count" title="Code stars">★ {{ p.stars }}</span>{% endif %}\n    {% if p.comments %}<span class="count" title="Comments">💬 {{ p.comments }}</span>{% endif %}\n    {% set ann = p.extra.get(\'announce_type\') if p.extra else None %}\n    {% if ann in announce_labels %}<span class="announce {{ ann }}" title="arXiv announced this as {{ ann }}">{{ announce_labels[ann] }}{% if ann.startswith(\'replace\') and p.version %} (v{{ p.version }}){% endif %}</span>{% endif %}\n  </p>\n  {% if p.abstract %}\n  <details class="abstract">\n    <summary>Abstract</summary>\n    <p dir="auto">{{ p.abstract|hl(terms) }}</p>\n  </details>\n  {% endif %}\n  <p class="links">\n    {% if p.abs_url|safe_url %}<a href="{{ p.abs_url|safe_url }}" rel="noopener">arXiv</a>{% endif %}\n    {% if p.pdf_url|safe_url %}<a href="{{ p.pdf_url|safe_url }}" rel="noopener">PDF</a>{% endif %}\n    {% if p.links.get(\'code\')|safe_url %}<a href="{{ p.links.get(\'code\')|safe_url }}" rel="noopener">Code</a>{% endif %}\n    {% if p.links.get(\'project\')|safe_url %}<a href="{{ p.links.get(\'project\')|safe_url }}" rel="noopener">Project</a>{% endif %}\n    {% if why %}<span class="why" title="Why this matched">matched by {{ why|join(\', \') }}</span>{% endif %}\n  </p>\n</article>\n{% endmacro %}\n'


def _extra_papers() -> list[Paper]:
    day = datetime(2024, 3, 11, 14, tzinfo=UTC)
    many = [Author(f"Author <{i}> & Co") for i in range(15)]
    return [
        Paper(
            id="2403.00001",
            title="Graph models & <graphs>",
            abstract="Graph modeling of graphs, 'quoted' & \"double\".",
            authors=many,
            arxiv_id="2403.00001",
            version=3,
            categories=["cs.LG", "stat.ML", "cs.AI", "cs.CV", "cs.CL", "cs.RO", "math.OC"],
            primary_category="stat.ML",
            published=day,
            links={"code": "https://github.com/x/y?a=1&b=2", "project": "javascript:alert(1)"},
            upvotes=0,
            stars=12,
            comments=3,
            extra={"announce_type": "replace-cross"},
        ),
        Paper(
            id="title:abc",
            title="Undated",
            first_seen=day,
            links={"abs": "data:text/html,x", "pdf": "http://example.org/p.pdf"},
            extra={"announce_type": "new"},
        ),
        Paper(id="doi/10.1/x", title="Bare", extra={"announce_type": "other"}),
        Paper(id="x", title="Replaced, no version", extra={"announce_type": "replace"}),
    ]


@pytest.mark.parametrize("terms", [(), ("graph", "model", "amp", "lt", "39")])
@pytest.mark.parametrize("why", [None, [], ["keyword", "semantic<"]])
@pytest.mark.parametrize("heading", ["h2", "h3"])
def test_the_python_card_is_the_macro(
    engine: Engine, terms: tuple[str, ...], why: list[str] | None, heading: str
) -> None:
    env = Renderer(engine).env
    env.globals["announce_labels"] = ANNOUNCE_LABELS
    reference = env.from_string(REFERENCE_MACRO + "{{ card(p, terms, why, heading) }}")
    ours = env.from_string("{{ card(p, terms, why, heading) }}")
    papers = [*engine.storage.iter_papers(), *_extra_papers()]
    assert len(papers) > 20
    for p in papers:
        args = {"p": p, "terms": terms, "why": why, "heading": heading}
        assert ours.render(**args) == reference.render(**args), p.id
    card = env.globals["card"](papers[0], terms, why, heading)
    assert isinstance(card, Markup)
