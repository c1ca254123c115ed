"""Write anarchist-faq.jsonl: An Anarchist FAQ's own question headings as
queries, the passages under each heading as their answers.

The headings are not part of any passage's text (they are kept in
passages.section), so what is searched never contains the question.
Numbering ("F.6.4", "2.", "Section B -") is removed from the query; headings
that are too short to be a question, or that occur in more than one place,
and broken contents links are left out. Run it against a library that holds the FAQ as `corpus fetch
anarchist-faq` installs it:

    python data/benchmarks/make_faq_benchmark.py [--db FILE]
"""
import argparse
import json
import re
from pathlib import Path

from readingroom.library.store import open_library

NUMBERING = re.compile(r"^(?:Section\s+[A-J]\s*[-–:]\s*|[A-J]?(?:\.?\d+)+\.?\s*(?:[-–:]\s+)?|[A-J]\.\s+)")
OUT = Path(__file__).with_name("anarchist-faq.jsonl")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    with open_library(args.db, read_only=True) as lib:
        rows = lib.con.execute(
            "SELECT p.section[len(p.section)] AS heading, count(*) AS n, min(d.key) AS doc "
            "FROM passages p JOIN documents d USING (doc_id) "
            "WHERE d.source = 'anarchist-faq' AND len(p.section) > 0 "
            "GROUP BY heading ORDER BY doc, min(p.ordinal)").fetchall()
        places = dict(lib.con.execute(
            "SELECT h, count(*) FROM (SELECT DISTINCT p.doc_id, unnest(p.section) AS h FROM passages p "
            "JOIN documents d USING (doc_id) WHERE d.source = 'anarchist-faq') GROUP BY h").fetchall())
    written = 0
    seen = set()
    with OUT.open("w", encoding="utf-8") as out:
        for heading, n, doc in rows:
            query = NUMBERING.sub("", heading).strip()
            # "[B.1.1 What are the effects of ..." is a broken link in a
            # contents list, not a heading with text under it.
            # So is a heading that runs several numbered questions together.
            broken = (heading.startswith("[") or len(query.split()) > 30
                      or re.search(r"\s\[?(?:[A-J]\.)?\d+(?:\.\d+)*\.?\s+[A-Z]", query) is not None)
            if broken or len(query.split()) < 3 or places.get(heading, 0) > 1 or query.casefold() in seen:
                continue
            seen.add(query.casefold())
            out.write(json.dumps({"q": query, "gold_section": heading, "passages": n}, ensure_ascii=False) + "\n")
            written += 1
    print(f"wrote {written} questions to {OUT}")


if __name__ == "__main__":
    main()
