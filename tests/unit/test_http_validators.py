"""ETags: the same bytes give the same strong tag in every process, and If-None-Match is read
as RFC 9110 asks (a list, weak comparison, or *)."""

from __future__ import annotations

import re

from colonnade.web.caching import etag_of, matches


def test_the_same_bytes_give_the_same_strong_tag_and_other_bytes_another() -> None:
    tag = etag_of(b'[{"id": "1"}]')
    assert tag == etag_of(b'[{"id": "1"}]')
    assert tag != etag_of(b'[{"id": "2"}]')
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)


def test_if_none_match_names_the_tag_in_a_list_weakly_or_as_a_star() -> None:
    tag = etag_of(b"page")
    assert matches(tag, tag)
    assert matches(f'"other", {tag}', tag)
    assert matches(f"W/{tag}", tag)
    assert matches("*", tag)
    assert not matches(None, tag)
    assert not matches("", tag)
    assert not matches('"other"', tag)
