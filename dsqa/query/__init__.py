"""Answering from a loaded index: ranking passages
(:mod:`~dsqa.query.retrieval`), how sure the answer is
(:mod:`~dsqa.query.confidence`, on the scale :mod:`~dsqa.query.calibration`
measures per index) and the answer itself (:mod:`~dsqa.query.answering`)."""
