from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from intel_support import TAXII, World
from taxii2client.v21 import ApiRoot, Collection, Server, Status, as_pages

from mamori.intel import (
    attack_pattern,
    campaign,
    identity,
    ip_indicator,
    relationship,
    serialize,
    sighting,
    url_indicator,
    validate_object,
)
from mamori.intel.taxii import create_collection

ERROR_KEYS = {"title", "description", "error_id", "error_code", "http_status"}
BANK_A = identity("Bank A")


def new_collection(world: World, **kw: Any) -> str:
    return create_collection(world.store, f"test {uuid.uuid4().hex[:6]}", **kw).id


def indicators(n: int, prefix: str = "10.1", tlp: str = "green") -> list[dict[str, Any]]:
    return [serialize(ip_indicator(f"{prefix}.{i // 250}.{i % 250}", created_by=BANK_A, tlp=tlp, confidence=70))
            for i in range(n)]


def post(world: World, cid: str, objects: list[dict[str, Any]], member: str = "alice") -> Any:
    return world.http("POST", f"/mamori/collections/{cid}/objects/", member,
                      headers={"Content-Type": TAXII}, content=json.dumps({"objects": objects}))


def everything(world: World, cid: str) -> list[dict[str, Any]]:
    """Every version of every object, as the admin sees it (RED/AMBER+STRICT of others excluded)."""
    col = Collection(f"{world.server.base}/mamori/collections/{cid}/", user="admin", password=world.keys["admin"])
    out: list[dict[str, Any]] = []
    for env in as_pages(col.get_objects, 1000, version="all"):
        out.extend(env.get("objects", []))
    return out


def assert_error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/taxii+json")
    body = resp.json()
    assert ERROR_KEYS <= set(body), body
    assert body["http_status"] == str(status)
    return body


def test_taxii2_client_full_flow(world: World) -> None:
    # Prepare
    cid = new_collection(world)
    server = Server(world.server.url, user="alice", password=world.keys["alice"])
    # Execute / Assert: discovery -> api root -> collections
    assert server.title == "mamori TAXII server"
    root: ApiRoot = server.default
    assert root.versions == [TAXII] and root.max_content_length >= 1024
    col = next(c for c in root.collections if c.id == cid)
    assert col.can_read and col.can_write
    # add, then a second add after a pause
    first = indicators(30, "10.2")
    status: Status = col.add_objects(json.dumps({"objects": first}))
    assert status.status == "complete" and status.success_count == 30 and status.failure_count == 0
    time.sleep(0.01)
    second = [serialize(o) for o in (attack_pattern("OAT-008"), campaign("Wave 1", created_by=BANK_A, tlp="green"),
                                      url_indicator("https://bank-a-login.example/signin", created_by=BANK_A))]
    second.append(serialize(relationship(second[2]["id"], "indicates", second[0]["id"], tlp="green")))
    second.append(serialize(sighting(second[2]["id"], observed_by=BANK_A, count=4)))
    status2 = col.add_objects(json.dumps({"objects": second}))
    assert status2.success_count == 5
    # status resource
    again = root.get_status(status.id)
    assert again.id == status.id and again.total_count == 30 and again.status == "complete"
    # poll everything with paging
    pages = list(as_pages(col.get_objects, 7))
    got = [o for env in pages for o in env.get("objects", [])]
    assert len(pages) == 5 and len(got) == 35
    assert len({o["id"] for o in got}) == 35
    # poll with added_after = last date of the first batch -> only the second batch
    manifest = col.get_manifest()
    first_added = {m["date_added"] for m in manifest["objects"] if m["id"] in {o["id"] for o in first}}
    assert len(first_added) == 1  # one envelope = one date_added shared by 30 objects
    later = [o for env in as_pages(col.get_objects, 2, added_after=first_added.pop()) for o in env.get("objects", [])]
    assert sorted(o["id"] for o in later) == sorted(o["id"] for o in second)
    # manifest, object, versions
    assert {m["id"] for m in manifest["objects"]} == {o["id"] for o in got}
    one = col.get_object(first[0]["id"])
    assert one["objects"] == [first[0]]
    versions = col.object_versions(first[0]["id"])
    assert versions["versions"] == [first[0]["modified"]]
    # every served object passes stix2-validator
    for obj in got:
        assert validate_object(obj) == [], obj["id"]


def test_pagination_when_many_objects_share_one_date_added(world: World) -> None:
    cid = new_collection(world)
    objs = indicators(250, "10.3")
    assert post(world, cid, objs).status_code == 202
    seen: list[str] = []
    cursor = None
    firsts = set()
    while True:
        params: dict[str, Any] = {"limit": 9}
        if cursor:
            params["next"] = cursor
        resp = world.http("GET", f"/mamori/collections/{cid}/objects/", params=params)
        assert resp.status_code == 200
        body = resp.json()
        seen += [o["id"] for o in body["objects"]]
        firsts.add(resp.headers["X-TAXII-Date-Added-First"])
        assert resp.headers["X-TAXII-Date-Added-First"] == resp.headers["X-TAXII-Date-Added-Last"]
        if not body["more"]:
            assert "next" not in body
            break
        cursor = body["next"]
    assert len(firsts) == 1
    assert seen == [o["id"] for o in objs]  # each exactly once, in the order added


def test_limit_is_capped_and_filters_combine(world: World) -> None:
    cid = new_collection(world)
    objs = indicators(5, "10.4") + [serialize(attack_pattern("OAT-007"))]
    post(world, cid, objs)
    ap = world.http("GET", f"/mamori/collections/{cid}/objects/", params={"match[type]": "attack-pattern"}).json()
    assert [o["type"] for o in ap["objects"]] == ["attack-pattern"]
    two = world.http("GET", f"/mamori/collections/{cid}/objects/",
                     params={"match[id]": f"{objs[0]['id']},{objs[3]['id']}"}).json()
    assert {o["id"] for o in two["objects"]} == {objs[0]["id"], objs[3]["id"]}
    sv = world.http("GET", f"/mamori/collections/{cid}/objects/", params={"match[spec_version]": "2.0"})
    assert sv.status_code == 200 and sv.json() == {}
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert world.http("GET", f"/mamori/collections/{cid}/objects/", params={"added_after": future}).json() == {}
    assert_error(world.http("GET", f"/mamori/collections/{cid}/objects/", params={"limit": "x"}), 400)
    assert_error(world.http("GET", f"/mamori/collections/{cid}/objects/", params={"added_after": "yesterday"}), 400)
    assert_error(world.http("GET", f"/mamori/collections/{cid}/objects/", params={"match[colour]": "red"}), 400)


def test_republished_indicator_is_one_object_with_versions(world: World) -> None:
    from mamori.intel import TaxiiClient

    cid = new_collection(world, alias=f"dedup-{uuid.uuid4().hex[:6]}")
    client = TaxiiClient(world.server.url, "alice", world.keys["alice"])
    ind1 = ip_indicator("198.51.100.9", created_by=BANK_A, confidence=60, tlp="green")
    first = client.push(cid, [ind1, sighting(ind1, observed_by=BANK_A, count=3, tlp="green")])
    assert (first.sent, first.new_versions) == (2, 0)
    # same indicator again, higher confidence, and a new sighting
    ind2 = ip_indicator("198.51.100.9", created_by=BANK_A, confidence=90, tlp="green")
    second = client.push(cid, [ind2, sighting(ind2, observed_by=BANK_A, count=2, tlp="green")])
    assert (second.sent, second.new_versions) == (2, 2)
    # identical re-publication -> nothing new
    third = client.push(cid, [ip_indicator("198.51.100.9", created_by=BANK_A, confidence=90, tlp="green")])
    assert (third.sent, third.unchanged) == (0, 1)
    objs = list(client.pull(cid))
    assert len(objs) == 2  # latest versions only
    latest = {o["type"]: o for o in objs}
    assert latest["indicator"]["confidence"] == 90 and latest["indicator"]["id"] == ind1.id
    assert latest["indicator"]["created"] == serialize(ind1)["created"]
    assert latest["sighting"]["count"] == 5
    versions = world.http("GET", f"/mamori/collections/{cid}/objects/{ind1.id}/versions/").json()["versions"]
    assert len(versions) == 2 and versions[0] < versions[1]
    first_v = world.http("GET", f"/mamori/collections/{cid}/objects/{ind1.id}/",
                         params={"match[version]": "first"}).json()["objects"]
    assert [o["confidence"] for o in first_v] == [60]
    all_v = world.http("GET", f"/mamori/collections/{cid}/objects/", params={"match[version]": "all"}).json()
    assert len(all_v["objects"]) == 4
    for obj in all_v["objects"]:
        assert validate_object(obj) == []


def test_tlp_enforcement(world: World) -> None:
    cid = new_collection(world)
    strict = serialize(ip_indicator("192.0.2.10", created_by=BANK_A, tlp="amber+strict"))
    red = serialize(ip_indicator("192.0.2.11", created_by=BANK_A, tlp="red"))
    green = serialize(ip_indicator("192.0.2.12", created_by=BANK_A, tlp="green"))
    assert post(world, cid, [strict, red, green], "alice").status_code == 202

    def visible(member: str) -> set[str]:
        body = world.http("GET", f"/mamori/collections/{cid}/objects/", member).json()
        return {o["id"] for o in body.get("objects", [])}

    assert visible("alice") == {strict["id"], red["id"], green["id"]}  # the author
    assert visible("alice2") == {strict["id"], green["id"]}  # same organisation: AMBER+STRICT, not RED
    assert visible("bob") == {green["id"]}
    assert visible("admin") == {green["id"]}  # RED never leaves its author, not even to an admin
    assert_error(world.http("GET", f"/mamori/collections/{cid}/objects/{red['id']}/", "bob"), 404)
    assert_error(world.http("GET", f"/mamori/collections/{cid}/objects/{strict['id']}/versions/", "bob"), 404)
    manifest = world.http("GET", f"/mamori/collections/{cid}/manifest/", "bob").json()
    assert [m["id"] for m in manifest["objects"]] == [green["id"]]


def test_collection_permissions(world: World) -> None:
    assert_error(world.http("GET", f"/mamori/collections/{world.shared}/objects/", "carol"), 403)
    assert_error(world.http("GET", f"/mamori/collections/{world.shared}/", "carol"), 403)
    assert world.http("GET", f"/mamori/collections/{world.public}/objects/", "carol").status_code == 200
    body = assert_error(post(world, world.public, indicators(1, "10.5"), "carol"), 403)
    assert "may not add" in body["description"]
    cols = world.http("GET", "/mamori/collections/", "carol").json()["collections"]
    assert [c["id"] for c in cols] == [world.public]
    assert cols[0]["can_read"] is True and cols[0]["can_write"] is False


def test_members_publish_only_as_their_own_organisation(world: World) -> None:
    cid = new_collection(world)
    before = everything(world, cid)
    forged = indicators(2, "10.11")  # created_by Bank A
    body = assert_error(post(world, cid, forged, "bob"), 403)
    assert body["details"]["foreign_objects"][0]["created_by_ref"] == BANK_A.id
    assert everything(world, cid) == before
    own = [serialize(ip_indicator("10.11.9.9", created_by=identity("Bank B"), tlp="green")),
           serialize(attack_pattern("OAT-019"))]  # no created_by_ref: fine
    assert post(world, cid, own, "bob").status_code == 202
    assert post(world, cid, forged, "admin").status_code == 202  # the operator may relay


def test_delete_only_by_author_or_admin(world: World) -> None:
    cid = new_collection(world)
    obj = indicators(1, "10.6")[0]
    post(world, cid, [obj], "alice")
    assert_error(world.http("DELETE", f"/mamori/collections/{cid}/objects/{obj['id']}/", "bob"), 403)
    assert world.http("DELETE", f"/mamori/collections/{cid}/objects/{obj['id']}/", "alice").status_code == 200
    assert_error(world.http("GET", f"/mamori/collections/{cid}/objects/{obj['id']}/", "alice"), 404)
    assert_error(world.http("DELETE", f"/mamori/collections/{cid}/objects/{obj['id']}/", "alice"), 404)


def test_rate_limit_per_member(world: World) -> None:
    codes = [world.http("GET", "/mamori/", "limited").status_code for _ in range(8)]
    assert codes[:5] == [200] * 5
    assert 429 in codes[5:]
    resp = world.http("GET", "/mamori/", "limited")
    body = assert_error(resp, 429)
    assert int(resp.headers["Retry-After"]) >= 1 and "per minute" in body["description"]
    assert world.http("GET", "/mamori/", "alice").status_code == 200  # others are not affected


def _bad_requests(world: World, cid: str) -> list[tuple[str, Any, int]]:
    ok_obj = indicators(1, "10.7")[0]
    bad_pattern = dict(ok_obj, id=f"indicator--{uuid.uuid4()}", pattern="[ipv4-addr:value = ]")
    posting = {"Content-Type": TAXII}
    path = f"/mamori/collections/{cid}/objects/"
    return [
        ("malformed JSON", dict(method="POST", path=path, headers=posting, content=b'{"objects": [{'), 400),
        ("not an envelope", dict(method="POST", path=path, headers=posting, content=b'[1, 2]'), 400),
        ("non-STIX object", dict(method="POST", path=path, headers=posting,
                                 content=json.dumps({"objects": [ok_obj, {"hello": "world"}]})), 400),
        ("invalid pattern", dict(method="POST", path=path, headers=posting,
                                 content=json.dumps({"objects": [bad_pattern]})), 400),
        ("50 MB body", dict(method="POST", path=path, headers=posting,
                            content=b'{"objects": [' + b" " * (50 * 1024 * 1024) + b"]}"), 413),
        ("wrong content type", dict(method="POST", path=path, headers={"Content-Type": "application/json"},
                                    content=json.dumps({"objects": [ok_obj]})), 415),
        ("wrong accept", dict(method="GET", path=path, headers={"Accept": "application/json"}), 406),
        ("TAXII 2.0 accept", dict(method="GET", path=path,
                                  headers={"Accept": "application/vnd.oasis.taxii+json; version=2.0"}), 406),
        ("unknown collection", dict(method="POST", path=f"/mamori/collections/{uuid.uuid4()}/objects/",
                                    headers=posting, content=json.dumps({"objects": [ok_obj]})), 404),
        ("unknown api root", dict(method="GET", path="/nope/collections/"), 404),
        ("unknown path", dict(method="GET", path="/mamori/whatever/"), 404),
        ("revoked key", dict(method="POST", path=path, member="revokee", headers=posting,
                             content=json.dumps({"objects": [ok_obj]})), 401),
        ("no key", dict(method="GET", path=path, headers={"Authorization": ""}), 401),
        ("wrong name for key", dict(method="GET", path=path, headers={"Authorization": "Basic Ym9iOnh4eA=="}), 401),
    ]


def test_bad_input_gets_spec_errors_and_changes_nothing(world: World) -> None:
    cid = new_collection(world)
    post(world, cid, indicators(20, "10.8"))
    before = everything(world, cid)
    audit_before = world.store.audit.count()
    for label, req, status in _bad_requests(world, cid):
        resp = world.http(req.pop("method"), req.pop("path"), req.pop("member", "alice"), **req)
        body = assert_error(resp, status)
        assert body["description"], label
    assert everything(world, cid) == before
    assert world.store.audit.count() == audit_before
    assert world.store.audit.verify().ok


def test_every_write_is_audited(world: World) -> None:
    cid = new_collection(world)
    post(world, cid, indicators(3, "10.9"), "alice")
    entries = [e for e in world.store.audit.entries() if e.subject == f"collection:{cid}"]
    assert [(e.actor, e.action) for e in entries] == [("cli", "collection.create"),
                                                      ("member:alice", "taxii.add_objects")]
    assert entries[1].details["added"] == 3
    assert world.store.audit.verify().ok


def test_cli_push_pull_list(world: World, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from mamori.cli import app

    cid = new_collection(world, alias=f"cli-{uuid.uuid4().hex[:6]}")
    bundle = tmp_path / "in.json"
    objs = indicators(12, "10.10")
    bundle.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objs}))
    env = {"MAMORI_TAXII_URL": world.server.url, "MAMORI_TAXII_MEMBER": "alice",
           "MAMORI_TAXII_KEY": world.keys["alice"]}
    runner = CliRunner(env=env | {"COLUMNS": "250"})
    pushed = runner.invoke(app, ["intel", "push", str(bundle), "-c", cid])
    assert pushed.exit_code == 0, pushed.output
    assert "sent 12 objects" in pushed.output
    again = runner.invoke(app, ["intel", "push", str(bundle), "-c", cid])
    assert "12 unchanged" in again.output
    out = tmp_path / "out.json"
    pulled = runner.invoke(app, ["intel", "pull", "-c", cid, "-o", str(out)])
    assert pulled.exit_code == 0, pulled.output
    assert sorted(o["id"] for o in json.loads(out.read_text())["objects"]) == sorted(o["id"] for o in objs)
    listed = runner.invoke(app, ["intel", "list"])
    assert listed.exit_code == 0 and cid in listed.output
    bad = CliRunner(env=env | {"MAMORI_TAXII_KEY": "wrong"}).invoke(app, ["intel", "list"])
    assert bad.exit_code != 0
