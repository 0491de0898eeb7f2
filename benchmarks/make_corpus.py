"""Make a realistic synthetic corpus in paperradar's JSON-lines format, for scale runs.

Vocabulary and word frequencies come from real abstracts (the bundled demo corpus, plus SciFact
when ../shared is there); title and abstract lengths follow the demo corpus. Ids are unique
new-style arXiv ids; dates spread over the last three years; categories and authors from pools.

    python benchmarks/make_corpus.py 1000000 -o /tmp/corpus-1m.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from paperradar.sources.pages import parse_page_dump

CATEGORIES = [
    "cs.LG",
    "cs.CL",
    "cs.CV",
    "cs.AI",
    "stat.ML",
    "math.OC",
    "cs.RO",
    "cs.IR",
    "quant-ph",
    "physics.comp-ph",
    "q-bio.NC",
    "eess.SP",
    "cs.NE",
    "math.ST",
    "cs.CR",
]
FIRST = [
    "Ana",
    "Wei",
    "Olga",
    "Kwame",
    "Priya",
    "Lars",
    "Mei",
    "Diego",
    "Fatima",
    "Jonas",
    "Yuki",
    "Sara",
    "Omar",
    "Elena",
    "Ravi",
    "Chen",
    "Lucas",
    "Amara",
    "Ivan",
    "Noor",
]
LAST = [
    "Garcia",
    "Zhang",
    "Ivanova",
    "Mensah",
    "Sharma",
    "Nilsson",
    "Tanaka",
    "Rossi",
    "Haddad",
    "Müller",
    "Kim",
    "Okafor",
    "Novak",
    "Silva",
    "Chen",
    "Dubois",
    "Patel",
    "Kowalski",
    "Larsen",
    "Ahmed",
]
WORD = re.compile(r"[A-Za-z][A-Za-z\-]+")


def real_texts(shared: Path | None) -> list[tuple[str, str]]:
    texts = []
    folder = resources.files("paperradar") / "data" / "demo"
    for item in folder.iterdir():
        if item.name.endswith(".txt"):
            for p in parse_page_dump(item.read_bytes()):
                if hasattr(p, "abstract"):
                    texts.append((p.title, p.abstract))
    if shared and (shared / "benchmarks/scifact/corpus.jsonl").is_file():
        with (shared / "benchmarks/scifact/corpus.jsonl").open() as fh:
            for line in fh:
                d = json.loads(line)
                texts.append((d["title"], d["text"]))
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("n", type=int)
    ap.add_argument("-o", "--output", type=Path, help="default: stdout")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    texts = real_texts(args.shared if args.shared.is_dir() else None)
    counts: Counter[str] = Counter()
    for t, a in texts:
        counts.update(w.lower() for w in WORD.findall(t + " " + a))
    vocab = np.array([w for w, _ in counts.most_common()], dtype=object)
    freq = np.array([c for _, c in counts.most_common()], dtype=np.float64)
    cdf = np.cumsum(freq / freq.sum())
    title_lens = np.array([len(t.split()) for t, _ in texts])
    abs_lens = np.array([len(a.split()) for _, a in texts if a])
    out = args.output.open("w") if args.output else sys.stdout
    start = datetime(2015, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    chunk = 10_000
    made = 0
    while made < args.n:
        k = min(chunk, args.n - made)
        tl = rng.choice(title_lens, k)
        al = rng.choice(abs_lens, k)
        words = vocab[np.searchsorted(cdf, rng.random(int(tl.sum() + al.sum())))]
        days = rng.integers(0, 3 * 365, k)
        cats = rng.integers(0, len(CATEGORIES), (k, 2))
        auth = rng.integers(0, len(FIRST), (k, 4))
        nauth = rng.integers(1, 5, k)
        ups = rng.poisson(2, k) * (rng.random(k) < 0.2)
        pos = 0
        lines = []
        for i in range(k):
            n = made + i
            title = " ".join(words[pos : pos + tl[i]]).capitalize()
            pos += tl[i]
            abstract = " ".join(words[pos : pos + al[i]]).capitalize() + "."
            pos += al[i]
            # Unique ids: 100,000 papers a calendar month, in order; the date falls inside that
            # month. (Stepping 30 days could land twice in one month: 1M papers had 800k ids.)
            year, month0 = divmod(start.month - 1 + n // 100000, 12)
            month = start.replace(year=start.year + year, month=month0 + 1, day=1)
            day = month + timedelta(days=int(days[i]) % 28)
            aid = f"{month:%y%m}.{n % 100000:05d}"
            lines.append(
                json.dumps(
                    {
                        "arxiv_id": f"{aid}v1",
                        "id": f"synthetic-{n}",
                        "title": title,
                        "abstract": abstract,
                        "authors": [
                            {"name": f"{FIRST[auth[i, j]]} {LAST[auth[i, (j + 1) % 4]]}"}
                            for j in range(nauth[i])
                        ],
                        "categories": sorted({CATEGORIES[cats[i, 0]], CATEGORIES[cats[i, 1]]}),
                        "primary_category": CATEGORIES[cats[i, 0]],
                        "published": day.isoformat(),
                        "upvotes": int(ups[i]) or None,
                        "sources": ["synthetic"],
                    }
                )
            )
        out.write("\n".join(lines) + "\n")
        made += k
    if args.output:
        out.close()
    took = time.perf_counter() - started
    print(f"made {made:,} papers in {took:.1f} s ({made / took:,.0f}/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
