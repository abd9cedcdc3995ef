"""Retrieval quality on the dev set, with the real model and the bundled,
committed index. Thresholds are the measured figures minus a small margin,
so a ranking regression fails CI."""

from __future__ import annotations

import re

import pytest
from conftest import CORPUS

from dsqa import DSQA, Settings
from dsqa.evaluation import (
    DEFAULT_DEVSET,
    KEP_DEVSET,
    evaluate,
    format_reports,
    load_questions,
)


@pytest.fixture(scope="module")
def bundled():
    return DSQA(Settings(auto_reindex=False))


def test_devset_is_well_formed():
    questions = load_questions(DEFAULT_DEVSET)
    assert len(questions) >= 100
    assert sum(not q.answerable for q in questions) >= 15
    for q in questions:
        for note, phrase in q.answers:
            text = (CORPUS / note).read_text(encoding="utf-8")
            assert any(phrase in line for line in text.split("\n")), (q.id, note, phrase)


def test_kep_devset_is_well_formed():
    questions = load_questions(KEP_DEVSET)
    assert len(questions) >= 30


def test_committed_index_is_up_to_date(bundled):
    status = bundled.status()
    assert status.up_to_date, status.problems


@pytest.mark.real_model
def test_devset_hit_rates(bundled):
    questions = load_questions(DEFAULT_DEVSET)
    report = evaluate("dsqa", questions, lambda q: bundled.ask(q, k=10))
    print("\n" + format_reports([report]))
    # thresholds: the measured figures (`dsqa eval`) minus a margin
    assert report.hit_at[1] >= 0.73
    assert report.hit1_by_kind["paraphrase"] >= 0.78
    assert report.hit_at[5] >= 0.94
    assert report.mrr10 >= 0.82
    assert report.answer_quotes >= 0.60
    assert report.median_passage_chars <= 1000
    refused = report.refusal
    assert refused["unanswerable_refused"] >= 0.71 * (refused["unanswerable_refused"] + refused["unanswerable_answered"])
    assert refused["answerable_refused"] <= 0.04 * report.answerable


#: Questions on the bundled notes whose short answer showed a defect: what
#: the answer must (and must not) hold.
ANSWER_CASES = [
    # the command the question asks for, held by a listed passage
    pytest.param(
        "how do I remove a container automatically when it exits", "`--rm` tells docker to delete the container after it exits", None,
        # The structure-aware chunker (issue 26) cuts that lab's list between
        # its top-level items: the `--rm` item's chunk no longer holds the
        # lab's first item and ranks below the top three passages quoted.
        marks=pytest.mark.xfail(reason="issue 26: ranks below the quoted passages since the chunker cuts between top-level items", strict=True),
    ),
    ("how do I scale a service", "`docker service scale voting_stack_vote=5`", None),
    # a bare title, a lead-in to a list, list noise
    ("how do I create an ECS cluster", None, "Create a ECS cluster"),
    ("how do I push an image to docker hub", "`docker image push", "Push your images to Docker Hub ["),
    ("what does a label do in kubernetes", "Label is used to determine the services of the set of Pods.", "can be used in:"),
    ("why use microservices", "Microservice provides more isolation", "Bullet point"),
    # backticks as the notes write them; a line of a command that goes on
    ("how do I publish a port with --publish", "`--publish` format flag `host_port:container_port`.", "``"),
    ("what is the fit API in sagemaker", "use the `fit` API", "`fit `"),
    ("how do I deploy the ecs cloudformation stack", None, "deploy \\"),
]


@pytest.mark.real_model
@pytest.mark.parametrize("question, holds, lacks", ANSWER_CASES)
def test_short_answers_on_the_bundled_notes(bundled, question, holds, lacks):
    answer = bundled.ask(question)
    assert answer.found and answer.text
    if holds:
        assert holds in answer.text, answer.text
    if lacks:
        assert lacks not in answer.text, answer.text


@pytest.mark.real_model
def test_citations_read_in_passage_order_on_the_bundled_notes(bundled):
    # Whichever passages hold the best sentences, the answer reads [1]
    # before [2]: [n] stays the n-th passage listed.
    cited = set()
    for question in ("how do I scale a service to 5 replicas", "why use microservices", "how do I push an image to docker hub"):
        answer = bundled.ask(question)
        markers = [int(m) for m in re.findall(r"\[(\d+)\]", answer.text)]
        assert markers and markers == sorted(markers), answer.text
        cited.add(len(set(markers)))
    assert max(cited) > 1  # some answer quotes more than one passage


@pytest.mark.real_model
def test_the_design_cards_question_quotes_the_service_discovery_lines(bundled):
    # Its first passage is the list item "Test the service discovery." with
    # its sub-items (DNS through the embedded resolver, ping by name): they
    # never say "service discovery", their heading path does, and the other
    # top passages never name it (they only create the overlay network).
    answer = bundled.ask("how do overlay networks do service discovery")
    first = answer.passages[0]
    assert first.heading.endswith("Test the service discovery."), first.heading
    assert set(re.findall(r"\[(\d+)\]", answer.text)) == {"1"}, answer.text
    assert "embedded DNS resolver" in answer.text and "ping the gwuservice by name" in answer.text, answer.text
