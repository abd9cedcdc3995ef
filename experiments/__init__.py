"""Experiments that informed dsqa and are not part of it: fine-tuning the
model, a second-stage re-ranker, generated questions, mpnet re-scoring, the
weight grid, and the HTML extractor comparison. Run each with
``python -m experiments.<name>``; their extra packages are in
``experiments/requirements.txt`` and their findings in
``experiments/adaptation.md``. The product and its tests never import them."""
