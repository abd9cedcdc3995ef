"""`python app.py`: the dsqa web page on http://127.0.0.1:7860.

The same page as `dsqa serve` (see dsqa/web/), over the default engine:
the bundled notes in corpus/ and the committed index in index/ (or
$DSQA_CORPUS / $DSQA_INDEX).
"""

from dsqa.web.page import build_page
from dsqa.web.server import DEFAULT_HOST, DEFAULT_PORT, launch

if __name__ == "__main__":
    launch(build_page(), host=DEFAULT_HOST, port=DEFAULT_PORT)
