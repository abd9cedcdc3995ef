"""Building the index: a reindex (:mod:`~dsqa.build.reindex`) chunks the
notes (:mod:`~dsqa.build.chunking`), reuses what is still fresh
(:mod:`~dsqa.build.freshness`), embeds the rest and writes a generation;
it reports what it did (:mod:`~dsqa.build.report`) and how far it is
(:mod:`~dsqa.build.progress`); :mod:`~dsqa.build.watch` reindexes on
changes. Building runs the query side too: it calibrates refusal with
:mod:`dsqa.query.calibration`."""
