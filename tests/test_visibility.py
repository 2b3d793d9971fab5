"""The visibility decisions (auth/visibility.py), pure: which captures a viewer may not see, who
changes a capture's visibility, which labels a viewer sees and who removes them."""

from __future__ import annotations

import pytest

from packettotal.auth import visibility as v
from packettotal.auth.rights import ANONYMOUS, LOCAL, Principal
from packettotal.errors import Forbidden, QueryError

ALICE, BOB = Principal("user", "analyst", "alice"), Principal("user", "analyst", "bob")
ROOT, KEY = Principal("user", "admin", "root"), Principal("key", "analyst", key_id="k1")


def up(cid: str, owner: str | None, level: str, share=(), public=False, uid=1) -> dict:
    return {"id": uid, "capture_id": cid, "owner": owner, "visibility": level, "share_with": list(share),
            "public": public}


def test_hidden_is_the_captures_none_of_whose_uploads_the_viewer_may_see():
    rows = [up("a", "alice", "private"), up("b", "alice", "shared", ["carol"]), up("c", "alice", "private"),
            up("c", "bob", "private"), up("d", "alice", "private", public=True)]
    assert v.hidden(rows, "alice") == frozenset()
    assert v.hidden(rows, "bob") == {"a", "b"}      # c: his own upload of it; d: a public upload
    assert v.hidden(rows, "carol") == {"a", "c"}
    assert v.hidden(rows, None) == {"a", "b", "c"}  # anonymous


def test_who_is_who_and_what_an_upload_starts_as():
    assert v.identity(KEY) == "key:k1" and v.identity(ANONYMOUS) is None and v.identity(ALICE) == "alice"
    assert v.default_visibility(ALICE) == "private" and v.default_visibility(ANONYMOUS) == "public"
    assert v.sees_everything("team", ROOT) and v.sees_everything("single", ANONYMOUS)
    assert v.sees_everything("public", LOCAL) and not v.sees_everything("public", ALICE)


def test_only_the_owner_or_an_admin_changes_visibility():
    rows = [up("c", "alice", "private", uid=1), up("c", "bob", "private", uid=2)]
    assert [r["id"] for r in v.uploads_to_change(rows, ALICE, "team")] == [1]
    assert [r["id"] for r in v.uploads_to_change(rows, ROOT, "team")] == [1, 2]
    with pytest.raises(Forbidden):
        v.uploads_to_change(rows, Principal("user", "analyst", "carol"), "team")
    assert v.check_change("shared", [" bob ", "bob", "carol"]) == ["bob", "carol"]
    too_many = [str(i) for i in range(v.MAX_SHARES + 1)]
    for level, names in (("secret", []), ("public", ["bob"]), ("shared", ["x\ty"]), ("shared", too_many)):
        with pytest.raises(QueryError):
            v.check_change(level, names)


def test_a_label_follows_its_authors_upload_and_only_its_author_or_an_admin_removes_it():
    ups = [up("c", "alice", "private"), up("c", "bob", "public")]
    alices, legacy = {"author": "alice"}, {"author": None}
    assert not v.label_visible(alices, ups, "bob") and not v.label_visible(alices, ups, None)
    assert v.label_visible(alices, ups, "alice") and v.label_visible(legacy, ups, None)
    assert v.label_visible({"author": "carol"}, ups, "bob")  # carol holds no upload of it: the capture's
    assert v.may_remove_label(alices, ALICE, "team") and v.may_remove_label(alices, ROOT, "team")
    assert not v.may_remove_label(alices, BOB, "team") and not v.may_remove_label(legacy, BOB, "team")
    assert v.may_remove_label(legacy, LOCAL, "single")


def test_a_share_with_a_group_opens_the_capture_to_its_members_only():
    rows = [up("a", "alice", "shared", ["group:team"]), up("b", "alice", "shared", ["team"])]
    assert v.hidden(rows, "gina", frozenset({"team"})) == {"b"}  # "team" alone names a user, not the group
    assert v.hidden(rows, "gina") == {"a", "b"}                   # not a member (or removed): nothing
    assert v.hidden(rows, None, frozenset({"team"})) == {"a", "b"}  # anonymous is no one's member
    ups = [up("c", "alice", "shared", ["group:team"]), up("c", "bob", "public")]
    assert v.label_visible({"author": "alice"}, ups, "gina", frozenset({"team"}))
    assert not v.label_visible({"author": "alice"}, ups, "gina")
    named = [{**up("c", "alice", "private"), "name": "secret.pcap"}, {**up("c", "bob", "public"), "name": "b.pcap"}]
    assert v.seen_names(named, "carol") == ["b.pcap"] and v.seen_names(named, "alice") == ["secret.pcap", "b.pcap"]
