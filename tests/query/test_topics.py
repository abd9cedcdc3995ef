"""Topic terms (issue 26, part 2): the words a question is about, checked
against the whole folder and the top passages; the verdict and confidence do
not depend on how many passages are shown."""

from __future__ import annotations

import pytest

from dsqa import DSQA, Settings
from dsqa.query import topics
from dsqa.results import NOT_COVERED, WEAK, Answer
from dsqa.storage.lexical import LexicalIndex
from dsqa.storage.records import ChunkRecord


def _chunk(heading: str, text: str) -> ChunkRecord:
    return ChunkRecord("n.md", heading, 1, 1, 0, len(text), text, heading)


CHUNKS = [
    _chunk("Raft", "Raft elects a leader per term. The leader replicates the log to followers."),
    _chunk("Raft › Safety", "A candidate needs votes from a majority of the cluster to become leader."),
    _chunk("Where it is used", "Raft was designed to be easier to understand than Paxos, the older algorithm."),
    _chunk("Kafka", "A customized partitioner picks the partition of each record from its key."),
]


@pytest.fixture(scope="module")
def lexical():
    return LexicalIndex.build([f"{c.heading}\n{c.text}" for c in CHUNKS])


def test_topic_terms_are_rare_english_words_or_words_rare_in_the_folder(lexical):
    terms = {t.word: t for t in topics.topic_terms("why does the raft kafka record use sourdough when it dies", lexical)}
    assert terms["kafka"].rare_in_english and terms["sourdough"].rare_in_english and terms["sourdough"].absent
    # Everyday words: "record" only as the folder holds it rarely; "raft"
    # is in three passages, "dies" is not in the folder at all.
    assert not terms["record"].rare_in_english and terms["record"].rows == (3,)
    assert "raft" not in terms and "dies" not in terms and "use" not in terms
    # A number is an instance, not a topic: "which program uses port 8080".
    words = [t.word for t in topics.topic_terms("which program opens port 8080 on k8s", lexical)]
    assert "k8s" in words and "8080" not in words


def test_a_rare_word_the_folder_never_contains_means_not_covered(lexical):
    verdict = topics.assess("how do I proof sourdough", [0, 1, 2], CHUNKS, lexical)
    assert verdict.coverage == NOT_COVERED and verdict.missing == ("sourdough",)


def test_a_word_of_the_same_root_counts_as_present(lexical):
    # "customised" is absent, but the folder has "customized".
    assert topics.assess("how is a customised partitioner written", [3], CHUNKS, lexical).coverage is None


def test_a_rare_word_mentioned_rarely_and_not_in_the_top_passages_is_in_passing(lexical):
    verdict = topics.assess("how does paxos elect a leader", [0, 1], CHUNKS, lexical)
    assert (verdict.coverage, verdict.passing, verdict.passing_row) == (WEAK, "paxos", 2)
    # In a top passage (or its heading) it is not in passing: the scale decides.
    assert topics.assess("how does paxos elect a leader", [2, 0], CHUNKS, lexical).coverage is None


def test_a_hyphenated_compound_of_everyday_words_names_one_thing():
    # "on-demand" is two everyday words to wordfreq, but one thing to the
    # question: held by one passage, not a top one, it is mentioned in passing.
    chunks = [
        _chunk("EC2", "EC2 instances are virtual machines rented by the hour."),
        _chunk("EC2 › Launch", "Launch an EC2 instance from the console and pick its type."),
        _chunk("SageMaker", "Training runs on-demand on managed machines."),
        _chunk("Kafka", "A customized partitioner picks the partition of each record from its key."),
    ]
    lexical = LexicalIndex.build([f"{c.heading}\n{c.text}" for c in chunks])
    verdict = topics.assess("how are EC2 spot instances priced compared to on-demand", [0, 1], chunks, lexical)
    assert (verdict.coverage, verdict.passing, verdict.passing_row) == (WEAK, "on-demand", 2)
    # Absent as a compound while the folder holds a part of it ("record"):
    # not a word the notes lack, the scale decides.
    assert topics.assess("how do multi-record batches work", [3], chunks, lexical).coverage is None


SAID = [
    _chunk("Raft › Where it is used", "etcd uses Raft. ZooKeeper uses its own protocol (ZAB) instead, but we did not go into it."),
    _chunk("Caching", "Consistent hashing puts servers on a ring.\nCDN = a cache at the edge; mentioned in the lecture but not\ncovered."),
    _chunk("Gossip", "Merkle trees let two replicas send only the ranges that differ. Bitcoin was not covered."),
]


def _sentences(chunks):
    """Sentence spans of each chunk, as the index stores them (split at ". ")."""

    def spans(row):
        text, at = chunks[row].text, 0
        for part in text.split(". "):
            yield at, at + len(part)
            at += len(part) + 2

    return spans


@pytest.mark.parametrize(
    ("question", "term"),
    [("how does zookeeper's zab protocol order updates", "zookeeper"), ("how does a CDN decide what to cache", "cdn")],
)
def test_a_term_whose_every_mention_says_the_notes_do_not_cover_it_is_in_passing(question, term):
    # The notes name the thing and say themselves that they do not explain
    # it: quoting that sentence as the answer would contradict them, even in
    # the top passage. A sentence wrapped over lines is read as one.
    lexical = LexicalIndex.build([f"{c.heading}\n{c.text}" for c in SAID])
    verdict = topics.assess(question, [0, 1, 2], SAID, lexical, _sentences(SAID))
    assert (verdict.coverage, verdict.passing) == (WEAK, term)
    # The reason points at the mention among the top passages when there is one.
    more = [*SAID, _chunk("Kafka", "Kafka kept its metadata in ZooKeeper, we skipped that part.")]
    lexical_more = LexicalIndex.build([f"{c.heading}\n{c.text}" for c in more])
    assert topics.assess("how does zookeeper order updates", [3, 1], more, lexical_more, _sentences(more)).passing_row == 3
    assert topics.assess("how does zookeeper order updates", [1, 2], more, lexical_more, _sentences(more)).passing_row == 0
    # Not read for what it says without the sentences: the scale decides.
    assert topics.assess(question, [0, 1, 2], SAID, lexical).coverage is None


def test_a_term_with_a_mention_that_explains_it_is_not_in_passing():
    # "merkle" is explained in the sentence that holds it; the disclaimer is
    # about another thing in the same passage.
    lexical = LexicalIndex.build([f"{c.heading}\n{c.text}" for c in SAID])
    assert topics.assess("how are merkle trees used for repair", [2], SAID, lexical, _sentences(SAID)).coverage is None
    # A mention in the heading path is the passage's subject, whatever its text says.
    chunks = [_chunk("ZAB", "ZAB orders updates; we did not go into the proof.")]
    lexical = LexicalIndex.build([f"{c.heading}\n{c.text}" for c in chunks])
    assert topics.assess("what is zab", [0], chunks, lexical, _sentences(chunks)).coverage is None


def test_the_answer_says_a_term_the_notes_say_they_do_not_cover_is_mentioned_in_passing(folder):
    (folder.settings.corpus_dir / "zk.md").write_text(
        "# Coordination\n\netcd and Consul use Raft for their logs. The lecturer said that ZooKeeper uses its own\n"
        "protocol (ZAB) instead, but we did not go into it.\n",
        encoding="utf-8",
    )
    folder.reindex()
    for k in (1, 3):
        answer = folder.ask("how does zookeeper's zab protocol order updates", k=k)
        assert answer.coverage != "answered" and "mention zookeeper only in passing" in answer.gap


def test_a_weak_answer_quotes_the_mention_in_passing_its_reason_points_at(folder):
    # The ordering note matches the question's wording better, but the
    # reason says where ZooKeeper is mentioned: the quote is that mention.
    notes = folder.settings.corpus_dir
    (notes / "zk.md").write_text(
        "# Coordination\n\netcd and Consul use Raft for their logs. The lecturer said that ZooKeeper uses its own\n"
        "protocol (ZAB) instead, but we did not go into it.\n",
        encoding="utf-8",
    )
    (notes / "order.md").write_text(
        "# Ordering updates\n\nEach protocol orders updates: the leader's protocol puts the updates in one order.\n",
        encoding="utf-8",
    )
    folder.reindex()
    answer = folder.ask("how does zookeeper's zab protocol order updates", k=3)
    mentioned = next(n for n, p in enumerate(answer.passages, 1) if p.source == "zk.md")
    assert answer.coverage == WEAK and f"only in passing [{mentioned}]" in answer.gap
    assert answer.text == f"The lecturer said that ZooKeeper uses its own protocol (ZAB) instead, but we did not go into it. [{mentioned}]"


def test_an_answer_never_quotes_a_line_that_says_the_notes_do_not_cover_something(tmp_path, fake_model):
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "gossip.md").write_text(
        "# Gossip\n\n- Gossip spreads the news to random peers every round.\n- Each round a node sends the news to three peers.\n"
        "- Bitcoin also gossips transactions to its peers, but the lecture only mentioned that in passing.\n",
        encoding="utf-8",
    )
    engine = DSQA(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash", refusal_threshold=-10.0))
    answer = engine.ask("how does gossip send the news to peers", k=1)
    assert answer.coverage == "answered"
    assert answer.text == "Gossip spreads the news to random peers every round. [1] Each round a node sends the news to three peers. [1]"


def test_a_passage_is_strong_only_when_it_holds_every_topic_term(lexical):
    terms = topics.topic_terms("paxos and raft", lexical)
    assert topics.covers(CHUNKS[2], terms) and not topics.covers(CHUNKS[0], terms)


def test_common_words_come_from_wordfreq_and_are_kept_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DSQA_CACHE", str(tmp_path))
    topics.common_words.cache_clear()
    try:
        words = topics.common_words()
        assert "container" in words and "paxos" not in words
        kept = list(tmp_path.glob("common-words-en-*.txt"))
        assert len(kept) == 1
        topics.common_words.cache_clear()
        assert topics.common_words() == words  # read back from the list
    finally:
        topics.common_words.cache_clear()


@pytest.fixture
def folder(tmp_path, fake_model):
    corpus = tmp_path / "my-notes"
    corpus.mkdir()
    (corpus / "raft.md").write_text(
        "# Raft\n\nRaft elects a leader per term with randomized election timeouts.\n\n"
        "## Log replication\n\nThe leader appends the command to its log and replicates it to the followers.\n\n"
        "## History\n\nRaft was designed to be easier to understand than Paxos.\n",
        encoding="utf-8",
    )
    (corpus / "kafka.md").write_text(
        "# Kafka\n\nA topic is split into partitions, and each partition is an ordered log.\n\n"
        "## Consumers\n\nEach partition is read by one consumer of a consumer group.\n",
        encoding="utf-8",
    )
    engine = DSQA(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash"))
    engine.reindex()
    return engine


QUESTIONS = [
    "how does raft elect a leader",
    "how does the leader replicate the log",
    "how are kafka topics split",
    "how do I proof sourdough",
    "how does paxos choose a value",
    "what reads a partition",
    # Terms spread over several passages: with fewer passages shown, the
    # confidence was taken over fewer of them.
    "consumer group and election timeouts",
    "paxos leader and kafka consumer",
]


def test_verdict_and_confidence_do_not_depend_on_k(folder):
    for q in QUESTIONS:
        # The reason's pointer to the mention may be [n] or the line, as shown.
        outcomes = {(a.coverage, round(a.confidence, 6), a.gap.split(" only in passing")[0]) for a in (folder.ask(q, k=k) for k in (1, 2, 3, 5))}
        assert len(outcomes) == 1, (q, outcomes)


def test_the_answer_names_the_missing_term_and_explains_the_scale(folder):
    answer = folder.ask("how do I proof sourdough")
    assert answer.coverage == NOT_COVERED and answer.gap == answer.reason == "Your notes don't mention sourdough."
    assert answer.confidence < answer.threshold - folder.settings.weak_margin
    shown = str(answer)
    assert shown.startswith("Your notes don't mention sourdough.")
    assert f"answered from {folder.settings.refusal_threshold:.2f}" in answer.scale_line() and answer.scale_line() in shown
    assert answer.to_dict()["reason"] == answer.gap


def test_a_folder_that_is_not_notes_is_named(tmp_path, fake_model):
    corpus = tmp_path / "manual"
    corpus.mkdir()
    (corpus / "intro.md").write_text("# Install\n\nRun the installer and accept the licence terms.\n", encoding="utf-8")
    engine = DSQA(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-hash"))
    assert engine.ask("how do I proof sourdough").gap == 'Your folder "manual" doesn\'t mention sourdough.'


def test_the_reason_of_a_mention_in_passing_says_where(folder):
    answer = folder.ask("how does paxos choose a value", k=1)
    if answer.gap:  # the fake model may rank the History passage first: then the scale decides
        assert answer.coverage != "answered" and "mention paxos only in passing" in answer.gap
        assert "raft.md:" in answer.gap or "[1]" in answer.gap


def test_str_of_an_answer_without_threshold_has_no_scale_line():
    assert "Confidence" not in str(Answer("q", [], False, "", 0.1))
