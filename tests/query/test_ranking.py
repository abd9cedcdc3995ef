"""Ranking against a brute-force reference, and the answer built from it
(fake model: milliseconds)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from dsqa import DSQA, Settings
from dsqa.query.answering import coverage, pick_quotes
from dsqa.query.confidence import confidence, raw_confidence
from dsqa.query.retrieval import top_rows
from dsqa.query.scorers import SCORERS
from dsqa.storage.lexical import LexicalIndex, concepts, lexical_text, tokenize

QUERIES = [
    "docker swarm overlay network",
    "how do I publish port 8080:80",
    "what does --rm do",
    "S3 bucket versioning",
    "hadoop mapreduce hive pig",
    "sagemaker endpoint deploy",
    "kinesis firehose athena",
    "docker-stack.yml services",
    "how do overlay networks do service discovery",
    "whats the diff between a container and a vm",
]


def brute_coverage(index, query: str) -> list[float]:
    """Each chunk's coverage of the query's worst-covered concept, from
    token sets and document counts computed here."""
    docs = [set(tokenize(lexical_text(c.heading, c.text))) for c in index.chunks]
    found = concepts(query)
    df = {t: sum(t in d for d in docs) for terms in found for t in terms}
    idf = {t: math.log(1 + (len(docs) - df[t] + 0.5) / (df[t] + 0.5)) for t in df}
    out = []
    for mine in docs:
        worst = 1.0
        for terms in found:
            worst = min(worst, sum(idf[t] for t in terms if t in mine) / sum(idf[t] for t in terms))
        out.append(worst if found else 0.0)
    return out


def brute_force(engine: DSQA, query: str, allowed=None) -> list[tuple[int, float]]:
    """Score every chunk the slow, obvious way."""
    retriever = engine.retriever()
    index = retriever.index
    qv = retriever.embed_query(query)
    lexical = index.lexical.scores(query)
    rows = range(len(index.chunks)) if allowed is None else allowed
    top_lexical = max(lexical[r] for r in rows)
    st = engine.settings
    coverage = brute_coverage(index, query)
    out = []
    for r in rows:
        sims = {w: float(index.vectors[w] @ qv) for w in index.window_rows(r)}
        whole = [s for w, s in sims.items() if index.windows[w, 1] < 0]
        windows = [s for w, s in sims.items() if index.windows[w, 1] >= 0]
        chunk = max(whole) if whole else max(windows)
        window = max(windows) if windows else 0.0  # no quotable sentence: no window credit
        lex = lexical[r] / top_lexical if top_lexical > 0 else 0.0
        out.append((r, st.chunk_weight * chunk + st.window_weight * window + st.bm25_weight * lex + st.concept_weight * coverage[r]))
    return sorted(out, key=lambda x: (-x[1], x[0]))


@pytest.mark.parametrize("query", QUERIES)
def test_hybrid_equals_brute_force_when_every_chunk_is_a_candidate(built, query):
    engine = DSQA(built.settings.with_(candidates=10_000))
    hits = engine.retriever().rank(query, 10)
    expected = brute_force(engine, query)[:10]
    assert [h.row for h in hits] == [r for r, _ in expected]
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_default_candidate_pool_finds_the_same_top_passages(built):
    same = 0
    for query in QUERIES:
        hits = built.retriever().rank(query, 5)
        expected = brute_force(built, query)[:5]
        same += [h.row for h in hits] == [r for r, _ in expected]
    assert same == len(QUERIES)


def test_filter_restricts_to_allowed_rows(built):
    index = built.retriever().index
    allowed = [r for r, c in enumerate(index.chunks) if c.source == "notes/anonymous-short-notes.md"]
    hits = built.retriever().rank("docker swarm s3 hadoop", 5, allowed)
    assert hits and all(h.row in allowed for h in hits)
    expected = brute_force(built, "docker swarm s3 hadoop", allowed)[:5]
    assert [h.row for h in hits] == [r for r, _ in expected]


@pytest.mark.parametrize("name", ["no-concepts", "dense", "bm25", "rrf"])
def test_single_retriever_methods(built, name):
    hits = built.retriever().rank("docker run --rm", 5, scorer=SCORERS[name])
    assert len(hits) == 5 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_concepts_are_the_runs_between_stop_words():
    assert concepts("how do overlay networks do service discovery") == [["overlay", "network"], ["servic", "discoveri"]]
    assert concepts("what does --rm do") == [["--rm", "rm"]]
    assert concepts("what is it") == []


def test_a_passage_covering_both_concepts_beats_one_repeating_the_louder(tmp_path, fake_model):
    # Without concept coverage the fake model ranks the note that repeats
    # "overlay networks" first; only coverage sees that it never answers
    # the discovery half of the question.
    loud = "# Overlay networks\n- How do overlay networks do routing? They do it across hosts.\n- Create overlay networks with docker network create -d overlay.\n"
    both = "# Lab\n- The embedded DNS server answers for each service name, which is how service discovery works on an overlay network.\n"
    filler = "# Misc\n- Buckets hold objects.\n"
    engine = indexed(tmp_path, {"loud.md": loud, "both.md": both, "misc.md": filler})
    hits = engine.search("how do overlay networks do service discovery", k=2)
    assert hits[0].source == "both.md"


def test_bm25_keeps_technical_terms():
    assert {"--rm", "8080:80", "docker-stack.yml", "s3", "-p"} <= set(tokenize("docker run --rm -p 8080:80 docker-stack.yml on S3"))
    assert tokenize("EMRFS") == tokenize("emrfs")


@pytest.mark.parametrize("seed", range(30))
def test_top_rows_equals_a_stable_full_sort(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(0, 300))
    # Few distinct values: many ties, at the cut too; zeros are never kept.
    scores = rng.integers(0, 6, size).astype(np.float32) * float(rng.choice([0.5, 1.7]))
    n = int(rng.integers(1, 60))
    brute = [int(r) for r in np.argsort(-scores, kind="stable")[:n] if scores[r] > 0]
    assert top_rows(scores, n).tolist() == brute


def test_bm25s_debug_lines_stay_out_of_the_users_terminal(caplog):
    # bm25s sets its logger to DEBUG; under a root handler that printed
    # "DEBUG:bm25s:Building index from tokens" in the middle of `dsqa eval`.
    with caplog.at_level(logging.DEBUG):
        LexicalIndex.build(["docker run --rm", "swarm overlay network"])
    assert not [r for r in caplog.records if r.name.startswith("bm25s") and r.levelno < logging.WARNING]


def test_exact_flag_query_ranks_the_note_with_it_first(built):
    hit = built.retriever().rank("--rm", 1, scorer=SCORERS["bm25"])[0]
    assert "--rm" in built.retriever().index.chunks[hit.row].text


# -- answers ------------------------------------------------------------------


def indexed(tmp_path, notes: dict[str, str], **settings) -> DSQA:
    """An engine over a corpus of the given notes, indexed with the fake model."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    for name, text in notes.items():
        (corpus / name).write_text(text)
    engine = DSQA(Settings(corpus_dir=corpus, index_dir=tmp_path / "i", model="fake-hash", **settings))
    engine.reindex()
    return engine


@pytest.fixture
def small(tmp_path, fake_model):
    zk = (
        "# ZooKeeper\n"
        "- ZooKeeper elects a leader with the ZAB protocol among its servers.\n"
        "- Clients read from any server but writes go through the leader.\n"
        "- The ensemble needs a majority of servers alive.\n"
    )
    s3 = "# S3\n- S3 stores objects in buckets with versioning.\n- Buckets have policies.\n"
    return indexed(tmp_path, {"zk.md": zk, "s3.md": s3}, refusal_threshold=0.3)


def test_answer_quotes_sentences_with_citation_markers(small):
    answer = small.ask("which protocol elects the zookeeper leader", k=2)
    assert answer.found
    assert answer.text.startswith("ZooKeeper elects a leader with the ZAB protocol among its servers. [1]")
    top = answer.passages[0]
    (start, end), *_ = top.highlights
    assert top.text[start:end] == "ZooKeeper elects a leader with the ZAB protocol among its servers."
    assert "[1]" in str(answer) and str(answer).index(answer.text) < str(answer).index("[1] zk.md")


def test_every_marker_points_at_a_listed_passage(small):
    answer = small.ask("zookeeper leader writes majority servers", k=2)
    import re

    markers = {int(m) for m in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers and markers <= set(range(1, len(answer.passages) + 1))
    for n in markers:
        assert answer.passages[n - 1].highlights


def test_unknown_terms_lower_confidence(small):
    retriever = small.retriever()
    known = retriever.rank("zookeeper leader", 3)
    unknown = retriever.rank("raft paxos leader", 3)
    c_known = confidence("zookeeper leader", known, retriever.index, retriever.settings)
    c_unknown = confidence("raft paxos leader", unknown, retriever.index, retriever.settings)
    assert c_unknown < c_known


def test_refusal_says_so_and_still_lists_passages(small):
    strict = DSQA(small.settings.with_(refusal_threshold=5.0))
    answer = strict.ask("how does raft replicate its log", k=2)
    assert not answer.found and answer.coverage == "not_covered"
    # The text holds only an answer; saying there is none is str()'s job.
    assert answer.text == ""
    assert len(answer.passages) == 2 and not any(p.highlights for p in answer.passages)
    # A folder that is not named for notes is named ("Your folder "c""); then
    # the line that says how to read the confidence, then the passages.
    assert answer.gap == 'Your folder "c" does not seem to cover this.'
    assert str(answer).startswith(answer.gap + " The nearest passages are listed below.\n\n" + answer.scale_line() + "\n\n[1] ")


def test_quotes_skip_near_duplicates(small):
    retriever = small.retriever()
    qv = retriever.embed_query("leader")
    hits = retriever.rank("leader", 2)
    quotes = pick_quotes("leader", hits, retriever.index, qv, retriever.settings)
    texts = [retriever.index.chunks[hits[q.passage].row].text[q.start : q.end] for q in quotes]
    assert len(texts) == len(set(texts))


def test_a_title_repeated_as_text_is_never_quoted(tmp_path, fake_model):
    note = (
        "# Overlay networking in a swarm\n\n"
        "Overlay networking in a swarm\n\n"
        "Overlay networks connect the Docker daemons of a swarm so its services can talk.\n"
    )
    engine = indexed(tmp_path, {"net.md": note}, refusal_threshold=0.0)
    answer = engine.ask("overlay networking in a swarm", k=1)
    assert answer.text == "Overlay networks connect the Docker daemons of a swarm so its services can talk. [1]"


@pytest.mark.parametrize(
    "title, body",
    [
        ("**Docker volumes keep data between runs**", ""),  # a bold line alone
        ("**Docker volumes keep data between runs** (asked in the lab)", ""),  # with an aside
        ("Docker volumes keep data between runs", ""),  # a short line without closing punctuation
        ("* Docker volumes keep data between runs", "  * "),  # a list item heading a list
        ("Docker volumes keep data between runs in these ways:", "- "),  # a lead-in to a list
    ],
)
def test_a_title_line_is_never_quoted(tmp_path, fake_model, title, body):
    note = f"# Storage\n\n{title}\n{'' if body else chr(10)}{body}A named volume outlives the container that mounts it, so data stays.\n"
    engine = indexed(tmp_path, {"v.md": note}, refusal_threshold=0.0)
    answer = engine.ask("do docker volumes keep data between runs", k=1)
    assert answer.text == "A named volume outlives the container that mounts it, so data stays. [1]"


def test_a_sentence_that_only_repeats_the_question_is_not_quoted(tmp_path, fake_model):
    # "Create a ECS cluster" is the name of a step: quoted as the answer to
    # "how do I create an ECS cluster" it tells nothing.
    note = "# Deploy\n\n- Create a ECS cluster\n- Pick the EC2 launch type and two instances in the console wizard.\n"
    engine = indexed(tmp_path, {"ecs.md": note}, refusal_threshold=0.0)
    answer = engine.ask("how do I create an ECS cluster", k=1)
    assert "Create a ECS cluster" not in answer.text
    assert answer.text.startswith("Pick the EC2 launch type")


def test_list_noise_is_left_out_of_the_quote_and_its_highlight(tmp_path, fake_model):
    note = (
        "# Kubernetes\n\n"
        "  * Bullet point: Labels select the pods that a service sends traffic to.\n"
        "    -create a label on a pod with kubectl label pod NAME app=v1 for a service\n"
    )
    engine = indexed(tmp_path, {"k.md": note}, refusal_threshold=0.0)
    for question, quoted in (
        ("labels select the pods of a service", "Labels select the pods that a service sends traffic to."),
        ("create a label on a pod with kubectl", "create a label on a pod with kubectl label pod NAME app=v1 for a service"),
    ):
        answer = engine.ask(question, k=1)
        # Both lines may be quoted (in reading order); each without its noise.
        assert quoted + " [1]" in answer.text and "Bullet" not in answer.text and " -create" not in answer.text, answer.text
        p = answer.passages[0]
        assert quoted in [p.text[a:b] for a, b in p.highlights]


@pytest.mark.parametrize(
    "line, quoted",
    [
        # Notes write code with one to three backticks, sometimes unevenly.
        ("- ``--publish``` takes the format ```host_port:container_port``` for a port.", "`--publish` takes the format `host_port:container_port` for a port."),
        ("- You call the ```fit ``` API to train a model on the port data.", "You call the `fit` API to train a model on the port data."),
    ],
)
def test_code_spans_are_quoted_with_single_backticks(tmp_path, fake_model, line, quoted):
    engine = indexed(tmp_path, {"c.md": f"# Ports\n\n{line}\n"}, refusal_threshold=0.0)
    assert engine.ask("port format", k=1).text == f"{quoted} [1]"


def test_code_that_runs_over_lines_is_not_quoted_in_pieces(tmp_path, fake_model):
    note = (
        "# Stack\n\n"
        "- ```aws cloudformation deploy --stack-name demo \\\n"
        "    --template-file ecs.yml```\n"
        "- The stack creates the ECS cluster, its load balancer and the demo service.\n"
    )
    engine = indexed(tmp_path, {"s.md": note}, refusal_threshold=0.0)
    answer = engine.ask("aws cloudformation deploy stack demo", k=1)
    assert answer.text == "The stack creates the ECS cluster, its load balancer and the demo service. [1]"


@pytest.mark.parametrize(
    ("heading", "other", "answer", "question"),
    [
        pytest.param(
            "Containers",
            "A stopped container stays on disk until you remove it.",
            "To remove a container when it stops, run it with `--rm` on docker run.",
            "how do I remove a stopped container",
            id="how-to: the line with the command",
        ),
        pytest.param(
            "Kinesis lab",
            "The stream holds the shards that carry the records of the unicorn fleet.",
            "We created the stream with 1 shard for the whole lab.",
            "how many shards did the stream have",
            id="how-many: the sentence with the number",
        ),
    ],
)
def test_a_question_for_a_command_or_an_amount_quotes_the_sentence_that_gives_it(
    tmp_path, fake_model, heading, other, answer, question
):
    note = f"# {heading}\n\n- {other}\n- {answer}\n"
    engine = indexed(tmp_path, {"n.md": note}, refusal_threshold=0.0, answer_sentences=1)
    assert engine.ask(question, k=1).text == f"{answer} [1]"


def test_citations_follow_the_order_of_the_passages(tmp_path, fake_model):
    notes = {
        "a.md": "# Swarm\n\nA swarm keeps the replicas of a service running on its nodes however you scale it.\n",
        "b.md": "# Scale\n\nScale a swarm service to five replicas with docker service scale web=5 here.\n",
    }
    retriever = indexed(tmp_path, notes, refusal_threshold=0.0).retriever()
    question = "scale the replicas of a swarm service"
    qv = retriever.embed_query(question)
    # Either ranking: the passage listed first is quoted first, so the text
    # reads [1] before [2] and [n] stays the n-th passage listed.
    for hits in (retriever.rank(question, 2), retriever.rank(question, 2)[::-1]):
        quotes = pick_quotes(question, hits, retriever.index, qv, retriever.settings)
        assert [q.passage for q in quotes] == [0, 1]


def test_coverage_has_three_bands():
    assert coverage(0.75, 0.5, 0.25) == "answered"
    assert coverage(0.5, 0.5, 0.25) == "answered"
    assert coverage(0.3, 0.5, 0.25) == "weak"
    assert coverage(0.25, 0.5, 0.25) == "weak"
    assert coverage(0.2, 0.5, 0.25) == "not_covered"
    assert coverage(0.45, 0.5, 0.0) == "not_covered"


def test_a_weak_answer_shows_its_closest_match_as_such(small):
    question = "which protocol elects the zookeeper leader"
    sure = small.ask(question, k=2)
    weak = DSQA(small.settings.with_(refusal_threshold=sure.confidence + 0.01, weak_margin=0.05)).ask(question, k=2)
    assert weak.coverage == "weak" and not weak.found
    # One sentence, the closest match, highlighted in its passage.
    assert weak.text == "ZooKeeper elects a leader with the ZAB protocol among its servers. [1]"
    assert weak.passages[0].highlights
    assert str(weak).startswith("Closest match, low confidence:\n" + weak.text + "\n\n" + weak.scale_line() + "\n\n[1] zk.md")
    assert weak.to_dict()["coverage"] == "weak" and weak.to_dict()["found"] is False
    refused = DSQA(small.settings.with_(refusal_threshold=sure.confidence + 0.1, weak_margin=0.05)).ask(question, k=2)
    assert refused.coverage == "not_covered" and refused.text == ""


def test_threshold_settings_are_checked(monkeypatch):
    monkeypatch.setenv("DSQA_REFUSAL_THRESHOLD", " 0.7 ")
    assert Settings().refusal_threshold == 0.7
    monkeypatch.delenv("DSQA_REFUSAL_THRESHOLD")
    with pytest.raises(ValueError, match="weak_margin"):
        Settings(weak_margin=-0.1)
    with pytest.raises(ValueError, match="refusal_threshold"):
        Settings(refusal_threshold=float("nan"))


def test_the_answering_tunables_are_settings_the_engine_uses(small):
    # "raft gardening" are unknown to the notes: the penalty for them is a
    # setting (everyday words, so the topic terms leave the verdict to it).
    # Raw confidences, on one index: each setting's own calibration would
    # shift its whole scale by about the penalty, leaving a rounding error.
    question = "raft gardening leader"
    retriever = small.retriever()
    hits, index = retriever.rank(question, 3), retriever.index
    share = index.manifest["calibration"]["known_share"]
    lenient = small.settings.with_(unknown_term_penalty=0.0)
    assert raw_confidence(question, hits, index, share, small.settings) < raw_confidence(question, hits, index, share, lenient)
    with pytest.raises(ValueError, match="quote_overlap"):
        Settings(quote_overlap=-0.5)
    with pytest.raises(ValueError, match="quote_passages"):
        Settings(quote_passages=0)


def test_window_scores_match_a_per_chunk_loop(built):
    """The vectorised per-chunk maxima equal the obvious loop: whole-chunk
    cosine, best window and its row, for any rows in any order."""
    retriever = built.retriever()
    index = retriever.index
    rng = np.random.default_rng(0)
    for query in QUERIES:
        qv = retriever.embed_query(query)
        rows = rng.permutation(len(index.chunks))[: rng.integers(1, len(index.chunks) + 1)]
        chunk, best, best_row = retriever.window_scores(qv, rows)
        for i, r in enumerate(rows):
            vector_rows = list(index.window_rows(int(r)))
            windows = [w for w in vector_rows if index.windows[w, 1] >= 0] or vector_rows
            top = max(float(index.vectors[w] @ qv) for w in windows)
            whole = [float(index.vectors[w] @ qv) for w in vector_rows if index.windows[w, 1] < 0]
            # the fake model gives some windows the same vector: any of the tied best will do
            assert best_row[i] in windows and float(index.vectors[best_row[i]] @ qv) == pytest.approx(top, abs=1e-6)
            assert best[i] == pytest.approx(top, abs=1e-6)
            assert chunk[i] == pytest.approx(max(whole) if whole else best[i], abs=1e-6)


def test_a_sentence_is_read_under_its_heading_path(tmp_path, fake_model):
    # The sentences under "Service discovery" never say "service" or
    # "discovery"; their heading path does, so they answer the question, not
    # a sentence that only repeats "overlay networks".
    notes = {
        "lab.md": (
            "# Overlay networks\n\n## Service discovery\n\n"
            "- Run cat /etc/resolv.conf to see the embedded DNS resolver at 127.0.0.11.\n"
            "- Ping the other task by its name and get back its virtual IP address.\n"
        ),
        "more.md": (
            "# Networks\n\nOverlay networks are created with docker network create on a manager node of the swarm, "
            "and listed with docker network ls.\n"
        ),
    }
    engine = indexed(tmp_path, notes, refusal_threshold=0.0, answer_sentences=1)
    answer = engine.ask("how do overlay networks do service discovery", k=2)
    lab = next(i for i, p in enumerate(answer.passages, 1) if p.source == "lab.md")
    assert answer.text.endswith(f"[{lab}]"), answer.text


def test_quotes_come_from_the_passages_that_cover_every_concept(tmp_path, fake_model):
    # The networks note matches "overlay networks" word for word but never
    # names service discovery; the lab's passage covers both concepts.
    notes = {
        "lab.md": "# Service discovery on overlay networks\n\nEach task finds the others by name through the embedded DNS resolver.\n",
        "more.md": "# Overlay networks\n\nOverlay networks connect the hosts of a swarm: overlay networks span hosts.\n",
    }
    engine = indexed(tmp_path, notes, refusal_threshold=-10.0, answer_sentences=2)
    answer = engine.ask("how do overlay networks do service discovery", k=2)
    lab = next(i for i, p in enumerate(answer.passages, 1) if p.source == "lab.md")
    assert answer.text == f"Each task finds the others by name through the embedded DNS resolver. [{lab}]", (answer.coverage, answer.gap)


def test_the_items_of_a_list_a_lead_in_introduces_are_quoted_together(tmp_path, fake_model):
    # The best sentence is one case of "The producer picks the partition:";
    # the other case answers as much as it does, though a sentence outside
    # the list scores higher.
    lead_in = (
        "# Kafka\n\n"
        "- The producer picks the partition:\n"
        "  - records with a key go to the partition of the message key hash;\n"
        "  - records without a key are spread over the partitions in turn{}\n"
    )
    other = "- Ordering: each message keeps the partition of its key, so one key stays in order.\n"
    question = "which partition gets a message with a key"
    (tmp_path / "two").mkdir()
    engine = indexed(tmp_path / "two", {"k.md": lead_in.format(".") + other}, refusal_threshold=-10.0, answer_sentences=2)
    assert engine.ask(question, k=1).text == (
        "records with a key go to the partition of the message key hash; [1] "
        "records without a key are spread over the partitions in turn. [1]"
    )
    # A list longer than the answer is left to the scores: part of it is no
    # more whole than any other choice.
    longer = lead_in.format(";") + "  - records sent by an old client go to partition zero.\n" + other
    (tmp_path / "three").mkdir()
    engine = indexed(tmp_path / "three", {"k.md": longer}, refusal_threshold=-10.0, answer_sentences=2)
    assert engine.ask(question, k=1).text == (
        "records with a key go to the partition of the message key hash; [1] "
        "Ordering: each message keeps the partition of its key, so one key stays in order. [1]"
    )
