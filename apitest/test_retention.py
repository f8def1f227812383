"""Retention (`recycle_job`) through the official client: count and age criteria, recycle and
delete actions, min_backups.

`GET /api/jobs/force_run/recycle_job` returns after the run, so the state is asserted right after
it. Server time cannot be faked from outside, so age is tested at its edges: `age 0` means every
backup is older than the limit (all but min_backups go), `age 1` means none is (all stay).
"""

from __future__ import annotations

from pathlib import Path

from backupchan import API, BackupRecycleAction, BackupRecycleCriteria

from helpers import make_target, parse_created, read_tree, upload


def upload_n(s, tid: str, work: Path, n: int) -> list[dict]:
    """n single-file backups with distinct contents, oldest first."""
    out = []
    for i in range(n):
        f = work / f"file{i}.txt"
        f.write_bytes(f"backup number {i}\n".encode())
        out.append(upload(s, tid, f))
    created = [parse_created(b) for b in out]
    assert created == sorted(created), "created_at must follow upload order"
    return out


def states(api: API, tid: str) -> dict[str, bool]:
    """backup id -> is_recycled, for the target."""
    return {b.id: b.is_recycled for b in api.get_target(tid)[1]}


def set_retention(api: API, tid: str, criteria: str, value: int, action: str, min_backups=None):
    t = api.get_target(tid)[0]
    api.edit_target(tid, t.name, BackupRecycleCriteria(criteria), value, BackupRecycleAction(action),
                    t.location, t.name_template, t.deduplicate, t.alias, min_backups, t.tags)


def test_count_recycle_keeps_newest(server, loc, work):
    s = server()
    api = s.api
    location = loc("count")
    tid = make_target(api, location)
    bystander = make_target(api, loc("other"), name="other", template="o-$I")
    backups = upload_n(s, tid, work, 5)
    others = upload_n(s, bystander, work, 3)
    set_retention(api, tid, "count", 2, "recycle")

    api.force_run_job("recycle_job")
    ids = [b["id"] for b in backups]
    assert states(api, tid) == {**{i: True for i in ids[:3]}, **{i: False for i in ids[3:]}}
    assert {b.id for b in api.list_recycled_backups()} == set(ids[:3])
    assert set(read_tree(location)) == {f"b-{i}.txt" for i in ids[3:]}
    assert (location / f"b-{ids[4]}.txt").read_bytes() == b"backup number 4\n"
    assert states(api, bystander) == {b["id"]: False for b in others}, "criteria none: untouched"

    # a second run changes nothing
    api.force_run_job("recycle_job")
    assert states(api, tid) == {**{i: True for i in ids[:3]}, **{i: False for i in ids[3:]}}
    stats = api.view_stats()
    assert (stats.total_backups, stats.total_recycled_backups) == (5 + 3, 3), "recycled backups still count"


def test_count_only_counts_active_backups(server, loc, work):
    s = server()
    api = s.api
    tid = make_target(api, loc("count"))
    b = [x["id"] for x in upload_n(s, tid, work, 4)]
    api.recycle_backup(b[3], True)  # the newest is already in the bin by hand
    set_retention(api, tid, "count", 2, "recycle")

    api.force_run_job("recycle_job")
    # active were b0, b1, b2: keep the 2 newest of them
    assert states(api, tid) == {b[0]: True, b[1]: False, b[2]: False, b[3]: True}


def test_count_delete_removes(server, loc, work):
    s = server()
    api = s.api
    location = loc("count")
    tid = make_target(api, location, criteria="count", value=1, action="delete")
    b = [x["id"] for x in upload_n(s, tid, work, 3)]

    api.force_run_job("recycle_job")
    assert states(api, tid) == {b[2]: False}
    assert api.list_recycled_backups() == []
    assert read_tree(location) == {f"b-{b[2]}.txt": b"backup number 2\n"}


def test_count_on_multi_target(server, loc, work):
    s = server()
    api = s.api
    location = loc("multi")
    tid = make_target(api, location, kind="multi", criteria="count", value=1, action="delete")
    first = upload(s, tid, _write(work / "one.txt", b"1"))
    second = upload(s, tid, _write(work / "two.txt", b"2"))

    api.force_run_job("recycle_job")
    assert states(api, tid) == {second["id"]: False}
    assert read_tree(location) == {f"b-{second['id']}/two.txt": b"2"}
    assert not (location / f"b-{first['id']}").exists()


def test_age_zero_keeps_min_backups(server, loc, work):
    s = server()
    api = s.api
    location = loc("age")
    tid = make_target(api, location)
    b = [x["id"] for x in upload_n(s, tid, work, 4)]

    set_retention(api, tid, "age", 1, "recycle", min_backups=2)
    api.force_run_job("recycle_job")
    assert states(api, tid) == {i: False for i in b}, "nothing is a day old yet"

    set_retention(api, tid, "age", 0, "recycle", min_backups=2)
    api.force_run_job("recycle_job")
    assert states(api, tid) == {b[0]: True, b[1]: True, b[2]: False, b[3]: False}
    assert set(read_tree(location)) == {f"b-{b[2]}.txt", f"b-{b[3]}.txt"}


def test_age_zero_without_min_backups(server, loc, work):
    s = server()
    api = s.api
    location = loc("age")
    tid = make_target(api, location, criteria="age", value=0, action="delete", min_backups=0)
    upload_n(s, tid, work, 3)

    api.force_run_job("recycle_job")
    assert states(api, tid) == {}
    assert api.list_recycled_backups() == []
    assert read_tree(location) == {}


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def test_official_clients_list_and_edit_a_target_with_a_keep_policy(server, cli, loc, work):
    """A target with a GFS `keep` policy (set through bakch's own API) still lists, views and
    edits through the official CLI and library, which only know none/count/age; their edits
    never drop the policy, and what they read in recycle_criteria never takes a new value."""
    import requests

    from helpers import lines, ok

    s = server()
    api = s.api
    c = cli(s)
    tid = make_target(api, loc("gfs"), criteria="count", value=3)
    keep = {"daily": 7, "weekly": 4, "monthly": 12, "within": "2d"}
    r = requests.patch(f"{s.url}/api/target/{tid}", json={"keep": keep}, headers=s.headers(), timeout=10)
    assert r.status_code == 200, r.text
    upload_n(s, tid, work, 3)

    def saved_keep():
        r = requests.get(f"{s.url}/api/target/{tid}", headers=s.headers(), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["target"]["keep"]

    assert saved_keep() == {"last": 0, "hourly": 0, "yearly": 0, **keep}

    # The CLI lists and views it; criteria read as before.
    listed = lines(ok(c("target", "list")))
    assert "    | Recycle criteria: After 3 copies" in listed, listed
    view = lines(ok(c("target", "view", tid)))
    assert "Recycle criteria: After 3 copies" in view, view

    # An edit by the CLI (it echoes every Backup-chan field back) keeps the policy.
    assert lines(ok(c("target", "edit", tid, "-n", "Renamed", "-v", "5"))) == ["Target edited."]
    t = api.get_target(tid)[0]
    assert (t.name, t.recycle_criteria, t.recycle_value) == ("Renamed", "count", 5)
    assert saved_keep()["daily"] == 7, "the CLI's edit must not drop the keep policy"

    # So does one by the library, changing the criteria.
    set_retention(api, tid, "age", 30, "recycle")
    t = api.get_target(tid)[0]
    assert (t.recycle_criteria, t.recycle_value) == ("age", 30)
    assert saved_keep()["monthly"] == 12

    # The preview and the run: `keep` decides (within 2d of the newest keeps all three).
    r = requests.get(f"{s.url}/api/target/{tid}/retention", headers=s.headers(), timeout=10)
    assert r.status_code == 200, r.text
    assert [b["decision"] for b in r.json()["backups"]] == ["keep"] * 3
    api.force_run_job("recycle_job")
    assert len([b for b in api.get_target(tid)[1] if not b.is_recycled]) == 3
