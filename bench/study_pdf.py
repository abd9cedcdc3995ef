"""Writes the study dev folder's PDF note (``dsqa/devsets/study/cap-consistency.pdf``):
two pages of lecture notes on CAP and consistency models, set with fpdf2 in
a body font and larger title lines, the way slides exported to PDF look.

    python -m bench.study_pdf [OUT]

The PDF is committed; this script is how it was made (fpdf2 is a dev extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "dsqa" / "devsets" / "study" / "cap-consistency.pdf"

#: (title, paragraphs) per page; a paragraph starting with "- " is a bullet.
PAGES: list[list[tuple[str, list[str]]]] = [
    [
        (
            "CAP theorem",
            [
                "Brewer's conjecture (2000), proved by Gilbert and Lynch in 2002. A distributed data store "
                "cannot provide all three of consistency, availability and partition tolerance at the same time.",
                "- Consistency here means linearizability: every read sees the most recent completed write.",
                "- Availability: every request to a node that has not failed gets a non-error response.",
                "- Partition tolerance: the system keeps working while the network drops messages between nodes.",
                "Network partitions happen whether we like it or not, so the real choice is what to give up "
                "during a partition: a CP system refuses some requests to stay consistent, an AP system keeps "
                "answering and may return stale data.",
                "Examples from the lecture: HBase and etcd are CP, Cassandra and DynamoDB (by default) are AP.",
            ],
        ),
        (
            "PACELC",
            [
                "Abadi's extension of CAP: if there is a Partition, choose between Availability and "
                "Consistency; Else, even when the system runs normally, choose between Latency and "
                "Consistency. It explains why many systems give up consistency even without failures: "
                "waiting for replicas costs latency on every request.",
            ],
        ),
    ],
    [
        (
            "Consistency models (strongest first)",
            [
                "- Linearizability: operations appear to take effect atomically at some instant between "
                "their start and their end, in real-time order.",
                "- Sequential consistency: all nodes see the operations in the same order, and each "
                "node's own operations in program order, but not necessarily in real-time order.",
                "- Causal consistency: writes that are causally related are seen in the same order by "
                "everyone; concurrent writes may be seen in different orders. Usually tracked with vector clocks.",
                "- Eventual consistency: if no new updates are made, all replicas eventually converge "
                "to the same value.",
                "Session guarantees sit in between: read-your-writes means a client always sees its own "
                "earlier writes, monotonic reads means it never sees time go backwards.",
            ],
        ),
        (
            "Quorums",
            [
                "With N replicas, a write waits for W acknowledgements and a read asks R replicas. "
                "If R + W > N, every read quorum overlaps every write quorum, so a read sees at least "
                "one replica with the latest write. A common choice is N = 3, W = 2, R = 2.",
                "Sloppy quorums and hinted handoff (Dynamo) keep accepting writes during a partition, "
                "which is why they do not give the overlap guarantee.",
            ],
        ),
    ],
]


def build(out: Path = OUT) -> Path:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_title("CAP and consistency: lecture 8 notes")
    for page in PAGES:
        pdf.add_page()
        for title, paragraphs in page:
            pdf.set_font("Helvetica", "B", 16)
            pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            pdf.set_font("Helvetica", "", 11)
            for para in paragraphs:
                bullet = para.startswith("- ")
                text = ("\u2022 " if bullet else "") + (para[2:] if bullet else para)
                pdf.set_x(26 if bullet else 20)
                pdf.multi_cell(0, 6, text.replace("\u2022", "-"), new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1.5)
            pdf.ln(4)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
