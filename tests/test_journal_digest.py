"""The SMS digest's packing (pure): whole answers, at most 5 texts of at most 2 segments,
nothing lost between pages, and emoji (UCS-2) answers still within 2 segments."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flows import journal, sms_text


def more(page: int) -> str:
    return f"Older notes: text JOURNAL {page}"


words = st.lists(st.text(alphabet="abcdefghij,.'", min_size=1, max_size=30),
                 min_size=1, max_size=80).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(words, min_size=1, max_size=40), st.booleans())
def test_every_word_arrives_in_order_within_the_limits(lines, emoji):
    lines = [f"Came up: {line}{' 🌊' if emoji and i % 3 == 0 else ''}"
             for i, line in enumerate(lines)]
    pages = journal.paginate(lines, more)
    for number, page in enumerate(pages, start=1):
        assert 1 <= len(page) <= journal.MAX_TEXTS
        for text in page:
            assert sms_text.segments(text) <= journal.MAX_TEXT_SEGMENTS, text
        assert page[-1].endswith(more(number + 1)) == (number < len(pages))
    sent = " ".join(text for page in pages for text in page)
    for number in range(2, len(pages) + 1):
        sent = sent.replace(more(number), " ")
    assert sent.split() == " ".join(lines).split()


def test_a_line_that_fits_is_never_split():
    lines = [f"Insight: {'word ' * 50}".strip() for _ in range(6)]
    texts = [t for page in journal.paginate(lines, more) for t in page]
    for line in lines:
        assert any(line in text for text in texts)


def test_session_lines_keep_the_participants_words_whole():
    notes = journal.SessionNotes(date="Mon Nov 23", intention="be  gentle",
                                 entries=[("images", "the \u201csea\u201d"), ("note", "later")],
                                 mood=4)
    assert journal.session_lines(notes, "Session of Mon Nov 23:") == [
        "Session of Mon Nov 23:", "Intention: be gentle", 'Came up: the "sea"',
        "Note: later", "48-hour mood: 4/5"]


def test_journal_with_a_page_number_is_a_command_and_a_sentence_is_not():
    from flows import keywords

    for text, page in [("JOURNAL", 1), ("journal 2", 2), ("My notes 3!", 3), ("Journal", 1)]:
        assert keywords.keyword(text) == keywords.JOURNAL
        assert keywords.journal_page(text) == page
    assert keywords.keyword("journal 2 things I noticed today") is None
