"""Where notes come from: the folder walk (:mod:`~dsqa.sources.walk`), the
safe read of one file (:mod:`~dsqa.sources.reading`), loading a whole folder
(:mod:`~dsqa.sources.loading`), a reader per file format
(:mod:`~dsqa.sources.formats`), Markdown structure
(:mod:`~dsqa.sources.markup`) and sentence boundaries
(:mod:`~dsqa.sources.sentences`)."""
