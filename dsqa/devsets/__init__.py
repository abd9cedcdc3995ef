"""The labelled question sets ``dsqa eval`` measures with, shipped with the
package so that it never reads the checkout:

* ``notes.jsonl``: questions about the bundled course notes (the default);
* ``kep.jsonl``: questions about the Kubernetes design documents of
  sig-storage and sig-apps (``dsqa eval --kep``, with ``$DSQA_KEP_SOURCE``).

The format is described in :mod:`dsqa.evaluation`.
"""
