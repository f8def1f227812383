"""Every function of the official `backupchan-client-lib` 1.5.1 against the real bakch binary."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from backupchan import (
    API,
    Backup,
    BackupchanAPIError,
    BackupRecycleAction,
    BackupRecycleCriteria,
    BackupTarget,
    BackupType,
    SequentialFile,
    Stats,
)

from helpers import (
    KEY_RE,
    SAMPLE_TREE,
    TEMPLATE,
    extract_tar,
    make_target,
    new_api_key,
    parse_created,
    prefixed,
    raw_backups,
    read_tree,
    seq_list,
    upload,
    upload_folder,
    wait_job,
    wait_new_backup,
    write_tree,
)

TARGET_KEYS = {"id", "name", "target_type", "recycle_criteria", "recycle_value", "recycle_action",
               "location", "name_template", "deduplicate", "alias", "min_backups", "tags"}
BACKUP_KEYS = {"id", "target_id", "created_at", "manual", "is_recycled", "filesize", "hash", "hash_mismatch"}
STATS_KEYS = {"program_version", "total_target_size", "total_recycle_bin_size", "total_targets",
              "total_backups", "total_recycled_backups"}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def api_error(fn, *args) -> BackupchanAPIError:
    with pytest.raises(BackupchanAPIError) as info:
        fn(*args)
    return info.value


def check_backup_json(b: dict, target_id: str):
    assert BACKUP_KEYS <= b.keys(), b
    assert b["target_id"] == target_id
    assert isinstance(b["filesize"], int) and not isinstance(b["filesize"], bool)
    assert isinstance(b["manual"], bool) and isinstance(b["is_recycled"], bool)
    assert isinstance(b["hash"], str) and b["hash"]
    assert b["hash_mismatch"] is False
    created = parse_created(b)
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=5), b["created_at"]


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------


def test_new_get_list_target(server, loc):
    s = server()
    api = s.api
    assert api.list_targets() == []
    location = loc("photos")
    tid = api.new_target("Photos", BackupType.SINGLE, BackupRecycleCriteria.COUNT, 5,
                         BackupRecycleAction.DELETE, str(location), "photo-$I", True, "pics", 2,
                         ["cool", "beans"])
    assert isinstance(tid, str) and tid

    target, backups = api.get_target(tid)
    assert isinstance(target, BackupTarget)
    assert backups == []
    assert (target.id, target.name, target.target_type, target.recycle_criteria, target.recycle_value,
            target.recycle_action, target.location, target.name_template, target.deduplicate,
            target.alias, target.min_backups, sorted(target.tags)) == (
        tid, "Photos", "single", "count", 5, "delete", str(location), "photo-$I", True, "pics", 2,
        ["beans", "cool"])

    # the alias works wherever an id does
    assert api.get_target("pics")[0].id == tid

    listed = api.list_targets()
    assert [t.id for t in listed] == [tid]
    assert listed[0] == target

    raw = s.json("GET", f"target/{tid}")
    assert set(raw["target"]) >= TARGET_KEYS
    # a created target answers 201 (contract), checked on the wire
    r = s.http("POST", "target", json={
        "name": "Other", "backup_type": "multi", "recycle_criteria": "none", "recycle_value": 0,
        "recycle_action": "recycle", "location": str(loc("other")), "name_template": "o-$I",
        "deduplicate": False, "alias": None, "min_backups": None, "tags": []})
    assert r.status_code == 201, r.text
    assert r.json()["success"] is True


def test_target_pages(server, loc):
    api = server().api
    ids = {make_target(api, loc(f"l{i}"), name=f"target {i:02}", template=f"t{i}-$I") for i in range(12)}
    page1 = api.list_targets(1)
    page2 = api.list_targets(2)
    page3 = api.list_targets(3)
    assert len(page1) == 10 and len(page2) == 2 and page3 == []
    assert {t.id for t in page1} | {t.id for t in page2} == ids
    assert not {t.id for t in page1} & {t.id for t in page2}


def test_new_target_rejects_bad_input(server, loc, bakch_bin):
    s = server()
    api = s.api
    good = dict(name="ok", backup_type=BackupType.MULTI, recycle_criteria=BackupRecycleCriteria.NONE,
                recycle_value=0, recycle_action=BackupRecycleAction.RECYCLE, location=str(loc("ok")),
                name_template="ok-$I", deduplicate=False, alias="okay", min_backups=None, tags=[])
    api.new_target(**good)
    bad_cases = {
        "blank name": dict(name="  ", name_template="x1-$I", alias=None),
        "template without $I/$D": dict(name="n", name_template="plain", alias=None),
        "template with slash": dict(name="n", name_template="a/$I", alias=None),
        "template with ..": dict(name="n", name_template="..$I", alias=None),
        "relative location": dict(name="n", name_template="x2-$I", alias=None, location="rel/dir"),
        "location inside the data folder": dict(name="n", name_template="x3-$I", alias=None,
                                                location=str(s.data_dir / "inside")),
        "duplicate template": dict(name="n", name_template="ok-$I", alias=None),
        "duplicate alias": dict(name="n", name_template="x4-$I", alias="okay"),
        "negative value": dict(name="n", name_template="x5-$I", alias=None,
                               recycle_criteria=BackupRecycleCriteria.COUNT, recycle_value=-1),
    }
    for what, change in bad_cases.items():
        exc = api_error(lambda: api.new_target(**{**good, **change}))
        assert exc.status_code in (400, 409), f"{what}: {exc}"
    assert len(api.list_targets()) == 1


def test_edit_target(server, loc):
    api = server().api
    l1, l2 = loc("one"), loc("two")
    tid = make_target(api, l1, name="Before", kind="multi", alias="before", tags=["x"])
    api.edit_target(tid, "After", BackupRecycleCriteria.AGE, 7, BackupRecycleAction.DELETE, str(l1),
                    "after-$D-$I", True, "after", 3, ["a", "b"])
    t, _ = api.get_target(tid)
    assert (t.name, t.target_type, t.recycle_criteria, t.recycle_value, t.recycle_action, t.location,
            t.name_template, t.deduplicate, t.alias, t.min_backups, sorted(t.tags)) == (
        "After", "multi", "age", 7, "delete", str(l1), "after-$D-$I", True, "after", 3, ["a", "b"])
    assert api.get_target("after")[0].id == tid

    # the CLI echoes every field back: an edit that changes nothing must succeed (Q3)
    api.edit_target(tid, t.name, t.recycle_criteria, t.recycle_value, t.recycle_action, t.location,
                    t.name_template, t.deduplicate, t.alias, t.min_backups, t.tags)
    assert api.get_target(tid)[0] == t

    # the lib can clear the alias with null, and tags with []
    api.edit_target(tid, "After", BackupRecycleCriteria.NONE, 0, BackupRecycleAction.RECYCLE, str(l1),
                    "after-$D-$I", False, None, None, [])
    t2, _ = api.get_target(tid)
    assert t2.alias is None and t2.tags == [] and t2.recycle_criteria == "none" and t2.deduplicate is False
    assert api_error(api.get_target, "after").status_code == 404

    # a second target may not take the first one's template or alias
    other = make_target(api, l2, name="Other", template="other-$I", alias="oth")
    exc = api_error(api.edit_target, other, "Other", "none", 0, "recycle", str(l2), "after-$D-$I",
                    False, "oth", None, [])
    assert exc.status_code in (400, 409)
    assert api.get_target(other)[0].name_template == "other-$I"
    assert api_error(api.edit_target, UNKNOWN_ID, "x", "none", 0, "recycle", str(l2), "x-$I",
                     False, None, None, []).status_code == 404


def test_delete_target(server, loc, work):
    s = server()
    api = s.api
    (work / "f.txt").write_bytes(b"keep me")
    l1, l2 = loc("keep"), loc("drop")
    keep = make_target(api, l1, name="keep", template="k-$I")
    drop = make_target(api, l2, name="drop", template="d-$I")
    bk = upload(s, keep, work / "f.txt")
    bd = upload(s, drop, work / "f.txt")
    kept_file = l1 / f"k-{bk['id']}.txt"
    dropped_file = l2 / f"d-{bd['id']}.txt"
    assert kept_file.read_bytes() == dropped_file.read_bytes() == b"keep me"

    api.delete_target(keep, False)
    assert api_error(api.get_target, keep).status_code == 404
    assert kept_file.read_bytes() == b"keep me", "delete_files=false must leave the files"

    api.delete_target(drop, True)
    assert api_error(api.get_target, drop).status_code == 404
    assert not dropped_file.exists(), "delete_files=true must remove the backup files"
    assert api.list_targets() == []
    assert api_error(api.delete_target, UNKNOWN_ID, True).status_code == 404


def test_search_targets(server, loc):
    api = server().api
    la, lb = loc("loc-a"), loc("loc-b")
    a = api.new_target("Alpha photos", BackupType.SINGLE, BackupRecycleCriteria.COUNT, 3,
                       BackupRecycleAction.RECYCLE, str(la), "alpha-$I", True, "alpha", None,
                       ["photo", "daily"])
    b = api.new_target("Beta docs", BackupType.MULTI, BackupRecycleCriteria.AGE, 30,
                       BackupRecycleAction.DELETE, str(lb), "beta-$D-$I", False, None, 1,
                       ["docs", "daily"])
    c = api.new_target("Gamma", BackupType.MULTI, BackupRecycleCriteria.NONE, 0,
                       BackupRecycleAction.RECYCLE, str(lb), "gamma+$I", False, "gam", None, [])

    def ids(**filters):
        return {t.id for t in api.search_targets(**filters)}

    assert ids(name="photos") == {a}
    assert ids(name="Beta docs") == {b}          # a space in the value
    assert ids(name="zzz") == set()
    assert ids(target_type=BackupType.MULTI) == {b, c}     # arrives as "BackupType.MULTI"
    assert ids(target_type="single") == {a}                 # a plain string arrives as is
    assert ids(recycle_criteria=BackupRecycleCriteria.AGE) == {b}
    assert ids(recycle_action=BackupRecycleAction.DELETE) == {b}
    assert ids(recycle_action=BackupRecycleAction.RECYCLE) == {a, c}
    assert ids(location=str(lb)) == {b, c}
    assert ids(name_template="beta-$D") == {b}
    assert ids(name_template="gamma+") == {c}               # "+" is a literal plus (P5)
    assert ids(deduplicate=True) == {a}
    assert ids(deduplicate=False) == {b, c}
    assert ids(alias="gam") == {c}
    assert ids(tags=["daily"]) == {a, b}
    assert ids(tags=["daily", "docs"]) == {b}                # a target must carry all tags
    assert ids(tags=["nope"]) == set()
    assert ids(target_type=BackupType.MULTI, deduplicate=False, tags=["docs"]) == {b}
    found = api.search_targets(name="Alpha")
    assert len(found) == 1 and found[0] == api.get_target(a)[0]

    assert api_error(api.search_targets).status_code == 400  # no filter at all


# ---------------------------------------------------------------------------------------------
# uploads and the files on disk
# ---------------------------------------------------------------------------------------------


def test_upload_backup_single_file(server, loc, work):
    s = server()
    api = s.api
    location = loc("single")
    tid = make_target(api, location)
    content = b"hello bakch\n" * 100
    (work / "x.txt").write_bytes(content)

    with open(work / "x.txt", "rb") as f:
        job_id = api.upload_backup(tid, f, "x.txt", True)
    assert isinstance(job_id, int)
    job = wait_job(api, job_id)
    assert job["status"] == "FINISHED", job
    assert job["name"] == "upload_job"

    _, backups = api.get_target(tid)
    assert len(backups) == 1
    b = backups[0]
    assert isinstance(b, Backup)
    assert (b.target_id, b.manual, b.is_recycled, b.filesize) == (tid, True, False, len(content))
    raw = raw_backups(s, tid)[0]
    check_backup_json(raw, tid)

    on_disk = location / f"b-{b.id}.txt"
    assert on_disk.read_bytes() == content
    assert os.listdir(location) == [on_disk.name], "nothing else in the target folder"

    # manual=False marks the backup automatic; an alias works as the upload target
    api.edit_target(tid, "t", "none", 0, "recycle", str(location), TEMPLATE, False, "single", None, [])
    with open(work / "x.txt", "rb") as f:
        job2 = api.upload_backup("single", f, "x.txt", False)
    assert wait_job(api, job2)["status"] == "FINISHED"
    autos = [x for x in api.get_target(tid)[1] if x.id != b.id]
    assert len(autos) == 1 and autos[0].manual is False


def test_acknowledged_upload_survives_a_crash(server, loc, work):
    """Promise 4: once the reply carried a job id, a crash of bakch does not lose the upload."""
    s = server()
    location = loc("crash")
    tid = make_target(s.api, location, kind="multi")
    folder = write_tree(work / "up", SAMPLE_TREE)
    job_id = s.api.upload_backup_folder(tid, str(folder), True)
    s.kill()  # right after the acknowledgement, wherever the job is
    s.start()
    job = wait_job(s, job_id)
    assert job["status"] == "FINISHED", job
    backups = raw_backups(s, tid)
    assert len(backups) == 1
    assert read_tree(location) == prefixed(f"b-{backups[0]['id']}/up", SAMPLE_TREE)


def test_upload_to_unknown_target(server, work):
    api = server().api
    (work / "x.txt").write_bytes(b"x")
    with open(work / "x.txt", "rb") as f:
        assert api_error(api.upload_backup, UNKNOWN_ID, f, "x.txt", True).status_code == 404


def test_name_template_date_and_mode(server, loc, work):
    s = server()
    location = loc("dated")
    tid = make_target(s.api, location, template="$M-$D-$I")
    (work / "db.sql").write_bytes(b"select 1;")
    for manual, mode in ((True, "manual"), (False, "auto")):
        b = upload(s, tid, work / "db.sql", manual=manual)
        files = [n for n in os.listdir(location) if b["id"] in n]
        assert len(files) == 1, os.listdir(location)
        m = re.fullmatch(rf"{mode}-(\d{{4}}-\d\d-\d\d_\d\d-\d\d-\d\d)-{re.escape(b['id'])}\.sql", files[0])
        assert m, f"{files[0]!r} does not match $M-$D-$I with $D as %Y-%m-%d_%H-%M-%S"
        stamp = datetime.strptime(m.group(1), "%Y-%m-%d_%H-%M-%S").replace(tzinfo=timezone.utc)
        assert abs(stamp - parse_created(b)) <= timedelta(seconds=2), (stamp, b["created_at"])
        assert (location / files[0]).read_bytes() == b"select 1;"


def test_upload_backup_folder(server, loc, work):
    s = server()
    api = s.api
    location = loc("multi")
    tid = make_target(api, location, kind="multi")
    folder = write_tree(work / "up", SAMPLE_TREE)

    b = upload_folder(s, tid, folder)
    check_backup_json(b, tid)
    assert b["filesize"] == sum(len(v) for v in SAMPLE_TREE.values())
    backup_dir = location / f"b-{b['id']}"
    assert backup_dir.is_dir()
    assert read_tree(backup_dir) == prefixed("up", SAMPLE_TREE)

    # a folder cannot go to a single-file target: the lib checks the type with get_target first
    single = make_target(api, loc("s"), name="s", template="s-$I")
    exc = api_error(api.upload_backup_folder, single, str(folder), True)
    assert "single file target" in str(exc)
    assert api.get_target(single)[1] == []


def test_multi_target_archives_and_plain_files(server, loc, work):
    s = server()
    location = loc("m")
    tid = make_target(s.api, location, kind="multi")

    plain = work / "notes.md"
    plain.write_bytes(b"# notes\n")
    b = upload(s, tid, plain)
    assert read_tree(location / f"b-{b['id']}") == {"notes.md": b"# notes\n"}

    tar_path = work / "bundle.tar"
    with tarfile.open(tar_path, "w") as tar:
        for rel, data in SAMPLE_TREE.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    b = upload(s, tid, tar_path)
    assert read_tree(location / f"b-{b['id']}") == SAMPLE_TREE

    zip_path = work / "bundle.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        for rel, data in SAMPLE_TREE.items():
            z.writestr(rel, data)
    b = upload(s, tid, zip_path)
    assert read_tree(location / f"b-{b['id']}") == SAMPLE_TREE


def test_hostile_archive_is_refused(server, loc, work):
    s = server()
    api = s.api
    outer = loc("outer")
    location = outer / "target"
    tid = make_target(api, location, kind="multi")
    evil = work / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with open(evil, "rb") as f:
        try:
            job_id = api.upload_backup(tid, f, "evil.tar.gz", True)
        except BackupchanAPIError as exc:
            assert exc.status_code == 400, exc
        else:
            job = wait_job(api, job_id)
            assert job["status"] == "ERROR", job
            assert job.get("error"), f"an ERROR job should say why: {job}"
    assert api.get_target(tid)[1] == []
    assert not (outer / "escaped.txt").exists()
    assert read_tree(location) == {}, "no partial backup files may stay behind"


def test_identical_content_is_one_inode(server, loc, work):
    s = server()
    api = s.api
    location = loc("dedup")
    tid = make_target(api, location)
    (work / "a.bin").write_bytes(os.urandom(200_000))
    (work / "copy.bin").write_bytes((work / "a.bin").read_bytes())
    b1 = upload(s, tid, work / "a.bin")
    b2 = upload(s, tid, work / "copy.bin")
    p1, p2 = location / f"b-{b1['id']}.bin", location / f"b-{b2['id']}.bin"
    assert p1 != p2 and p1.read_bytes() == p2.read_bytes()
    assert p1.stat().st_ino == p2.stat().st_ino, "identical content must be hard links to one blob"
    assert b1["hash"] == b2["hash"]

    # multi-file: a file that did not change between two folder uploads shares its inode too
    mloc = loc("mdedup")
    mid = make_target(api, mloc, name="m", kind="multi", template="m-$I")
    folder = write_tree(work / "up", SAMPLE_TREE)
    m1 = upload_folder(s, mid, folder)
    (folder / "a.txt").write_bytes(b"changed\n")
    m2 = upload_folder(s, mid, folder)
    d1, d2 = mloc / f"m-{m1['id']}" / "up", mloc / f"m-{m2['id']}" / "up"
    assert (d1 / "sub/b.txt").stat().st_ino == (d2 / "sub/b.txt").stat().st_ino
    assert (d1 / "a.txt").stat().st_ino != (d2 / "a.txt").stat().st_ino
    assert (d1 / "a.txt").read_bytes() == b"alpha\n" and (d2 / "a.txt").read_bytes() == b"changed\n"

    stats = s.json("GET", "stats")
    assert stats["total_backups"] == 4


# ---------------------------------------------------------------------------------------------
# download, delete, recycle
# ---------------------------------------------------------------------------------------------


def test_download_backup(server, loc, work):
    s = server()
    api = s.api
    sl, ml = loc("s"), loc("m")
    single = make_target(api, sl)
    multi = make_target(api, ml, name="m", kind="multi", template="m-$I")
    content = os.urandom(300_000)
    (work / "data.bin").write_bytes(content)
    folder = write_tree(work / "up", SAMPLE_TREE)
    bs = upload(s, single, work / "data.bin")
    bm = upload_folder(s, multi, folder)

    out = work / "dl"
    out.mkdir()
    path = Path(api.download_backup(bs["id"], str(out)))
    assert path == out / f"b-{bs['id']}.bin"
    assert path.read_bytes() == content
    r = s.http("GET", f"backup/{bs['id']}/download")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == f'attachment; filename="b-{bs["id"]}.bin"'

    path = Path(api.download_backup(bm["id"], str(out)))
    assert path == out / f"m-{bm['id']}.tar"
    assert extract_tar(path, work / "x") == prefixed("up", SAMPLE_TREE)

    exc = api_error(api.download_backup, UNKNOWN_ID, str(out))
    assert exc.status_code == 404


def test_delete_backup(server, loc, work):
    s = server()
    api = s.api
    location = loc("del")
    tid = make_target(api, location)
    (work / "f.txt").write_bytes(b"data")
    keep_files = upload(s, tid, work / "f.txt")
    drop_files = upload(s, tid, work / "f.txt")

    api.delete_backup(keep_files["id"], False)
    api.delete_backup(drop_files["id"], True)
    assert api.get_target(tid)[1] == []
    assert (location / f"b-{keep_files['id']}.txt").read_bytes() == b"data"
    assert not (location / f"b-{drop_files['id']}.txt").exists()
    assert api_error(api.delete_backup, keep_files["id"], True).status_code == 404


def test_recycle_and_restore(server, loc, work):
    s = server()
    api = s.api
    location = loc("r")
    tid = make_target(api, location)
    (work / "f.txt").write_bytes(b"recycle me")
    b = upload(s, tid, work / "f.txt")
    other = upload(s, tid, work / "f.txt")
    path = location / f"b-{b['id']}.txt"

    api.recycle_backup(b["id"], True)
    by_id = {x.id: x for x in api.get_target(tid)[1]}
    assert by_id[b["id"]].is_recycled is True and by_id[other["id"]].is_recycled is False
    assert [x.id for x in api.list_recycled_backups()] == [b["id"]]
    assert not path.exists(), "a recycled backup leaves the target folder for the recycle bin"
    stats = api.view_stats()
    assert (stats.total_recycled_backups, stats.total_recycle_bin_size) == (1, len(b"recycle me"))

    api.recycle_backup(b["id"], False)
    assert all(not x.is_recycled for x in api.get_target(tid)[1])
    assert api.list_recycled_backups() == []
    assert path.read_bytes() == b"recycle me"
    assert (location / f"b-{other['id']}.txt").read_bytes() == b"recycle me"

    assert api_error(api.recycle_backup, UNKNOWN_ID, True).status_code == 404


def test_recycle_bin_list_and_clear(server, loc, work):
    s = server()
    api = s.api
    l1, l2 = loc("one"), loc("two")
    t1 = make_target(api, l1, name="one", template="one-$I")
    t2 = make_target(api, l2, name="two", kind="multi", template="two-$I")
    (work / "f.txt").write_bytes(b"content")
    folder = write_tree(work / "up", SAMPLE_TREE)
    r1 = upload(s, t1, work / "f.txt")
    active = upload(s, t1, work / "f.txt")
    r2 = upload_folder(s, t2, folder)
    assert api.list_recycled_backups() == []
    api.recycle_backup(r1["id"], True)
    api.recycle_backup(r2["id"], True)

    binned = api.list_recycled_backups()
    assert {x.id for x in binned} == {r1["id"], r2["id"]}
    assert all(isinstance(x, Backup) and x.is_recycled for x in binned)
    assert {x.target_id for x in binned} == {t1, t2}

    api.clear_recycle_bin(True)
    assert api.list_recycled_backups() == []
    assert [x.id for x in api.get_target(t1)[1]] == [active["id"]]
    assert api.get_target(t2)[1] == []
    assert read_tree(l1) == {f"one-{active['id']}.txt": b"content"}
    assert read_tree(l2) == {}
    stats = api.view_stats()
    assert (stats.total_recycled_backups, stats.total_recycle_bin_size) == (0, 0)

    # delete_files=false: the rows go, the call succeeds
    api.recycle_backup(active["id"], True)
    api.clear_recycle_bin(False)
    assert api.list_recycled_backups() == [] and api.get_target(t1)[1] == []


def test_delete_target_backups_and_recycled(server, loc, work):
    s = server()
    api = s.api
    location = loc("t")
    tid = make_target(api, location)
    other = make_target(api, loc("o"), name="o", template="o-$I")
    (work / "f.txt").write_bytes(b"x")
    b1, b2, b3 = (upload(s, tid, work / "f.txt") for _ in range(3))
    ob = upload(s, other, work / "f.txt")
    api.recycle_backup(b1["id"], True)
    api.recycle_backup(ob["id"], True)

    api.delete_target_recycled_backups(tid, True)
    assert {x.id for x in api.get_target(tid)[1]} == {b2["id"], b3["id"]}
    assert [x.id for x in api.list_recycled_backups()] == [ob["id"]], "other targets' bin untouched"
    assert read_tree(location).keys() == {f"b-{b2['id']}.txt", f"b-{b3['id']}.txt"}

    api.recycle_backup(b2["id"], True)
    api.delete_target_backups(tid, True)  # every backup of the target, recycled ones too
    assert api.get_target(tid)[1] == []
    assert read_tree(location) == {}
    assert [x.id for x in api.list_recycled_backups()] == [ob["id"]]
    assert len(api.get_target(other)[1]) == 1

    assert api_error(api.delete_target_backups, UNKNOWN_ID, True).status_code == 404
    assert api_error(api.delete_target_recycled_backups, UNKNOWN_ID, True).status_code == 404


# ---------------------------------------------------------------------------------------------
# log, stats, jobs
# ---------------------------------------------------------------------------------------------


def test_get_log(server, loc, work):
    s = server()
    api = s.api
    tid = make_target(api, loc("l"))
    (work / "f.txt").write_bytes(b"x")
    upload(s, tid, work / "f.txt")
    full = api.get_log(0)
    assert isinstance(full, str) and full.strip()
    tail = api.get_log(2)
    tail_lines = tail.splitlines()
    assert 1 <= len(tail_lines) <= 2
    later = api.get_log(0).splitlines()
    n = len(tail_lines)
    assert any(later[i:i + n] == tail_lines for i in range(len(later))), "tail lines come from the log"
    assert len(full.splitlines()) > 2


def test_view_stats(server, loc, work):
    s = server()
    api = s.api
    stats = api.view_stats()
    assert isinstance(stats, Stats)
    assert isinstance(stats.program_version, str) and stats.program_version
    assert (stats.total_target_size, stats.total_recycle_bin_size, stats.total_targets,
            stats.total_backups, stats.total_recycled_backups) == (0, 0, 0, 0, 0)
    raw = s.json("GET", "stats")
    assert STATS_KEYS <= raw.keys()
    for k in STATS_KEYS - {"program_version"}:
        assert type(raw[k]) is int, (k, raw[k])

    tid = make_target(api, loc("s"))
    make_target(api, loc("s2"), name="two", template="two-$I")
    (work / "a.txt").write_bytes(b"a" * 1000)
    (work / "b.txt").write_bytes(b"b" * 500)
    upload(s, tid, work / "a.txt")
    rb = upload(s, tid, work / "b.txt")
    api.recycle_backup(rb["id"], True)
    stats = api.view_stats()
    assert (stats.total_targets, stats.total_backups, stats.total_recycled_backups,
            stats.total_target_size, stats.total_recycle_bin_size) == (2, 2, 1, 1000, 500)


def test_list_jobs_and_force_run(server, loc, work):
    s = server()
    api = s.api
    tid = make_target(api, loc("j"))
    (work / "f.txt").write_bytes(b"x")
    with open(work / "f.txt", "rb") as f:
        job_id = api.upload_backup(tid, f, "f.txt", True)
    wait_job(api, job_id)

    delayed, scheduled = api.list_jobs()
    mine = [j for j in delayed if j.id == job_id]
    assert len(mine) == 1
    job = mine[0]
    assert (job.name, job.status) == ("upload_job", "FINISHED")
    assert isinstance(job.start_time, datetime) and job.start_time <= job.end_time
    assert abs(job.end_time - datetime.now(timezone.utc).replace(tzinfo=None)) < timedelta(minutes=5)

    names = {j.name for j in scheduled}
    assert {"recycle_job", "stale_seq_upload_job"} <= names
    for j in scheduled:
        assert isinstance(j.interval, int) and j.interval > 0, j
        assert isinstance(j.next_run, datetime)
    raw = s.json("GET", "jobs")
    assert all(isinstance(j["next_run"], (int, float)) for j in raw["scheduled"])

    api.force_run_job("recycle_job")
    api.force_run_job("stale_seq_upload_job")
    assert api_error(api.force_run_job, "no_such_job").status_code == 404


# ---------------------------------------------------------------------------------------------
# sequential upload
# ---------------------------------------------------------------------------------------------


def seq_state(api: API, tid: str) -> dict:
    return {(f.path, f.name): f.uploaded for f in api.seq_check(tid)}


def seq_put(api: API, tid: str, folder: Path, f: SequentialFile):
    with open(folder / f.path.lstrip("/") / f.name, "rb") as fh:
        api.seq_upload(tid, fh, f)


def test_seq_upload_full_cycle(server, loc, work):
    s = server()
    api = s.api
    location = loc("seq")
    tid = make_target(api, location, kind="multi")
    folder = write_tree(work / "src", SAMPLE_TREE)
    flist = seq_list(SAMPLE_TREE)

    api.seq_begin(tid, flist, False)
    assert seq_state(api, tid) == {(f.path, f.name): False for f in flist}
    for i, f in enumerate(flist):
        seq_put(api, tid, folder, f)
        state = seq_state(api, tid)
        assert state == {(g.path, g.name): j <= i for j, g in enumerate(flist)}
    assert api.get_target(tid)[1] == [], "nothing is visible before finish"
    before = set()
    api.seq_finish(tid)
    b = wait_new_backup(s, tid, before)
    check_backup_json(b, tid)
    assert b["manual"] is False
    assert b["filesize"] == sum(len(v) for v in SAMPLE_TREE.values())
    assert read_tree(location / f"b-{b['id']}") == SAMPLE_TREE

    out = work / "dl"
    out.mkdir()
    path = Path(api.download_backup(b["id"], str(out)))
    assert extract_tar(path, work / "x") == SAMPLE_TREE

    # the upload is closed: a new one can begin, the old one cannot be checked
    assert api_error(api.seq_check, tid).status_code in (400, 404)
    api.seq_begin(tid, flist[:1], True)
    api.seq_terminate(tid)


def test_seq_upload_errors(server, loc, work):
    s = server()
    api = s.api
    location = loc("seq")
    tid = make_target(api, location, kind="multi")
    single = make_target(api, loc("single"), name="single", template="s-$I")
    folder = write_tree(work / "src", SAMPLE_TREE)
    flist = seq_list(SAMPLE_TREE)

    assert api_error(api.seq_begin, single, flist, True).status_code == 400
    assert api_error(api.seq_begin, UNKNOWN_ID, flist, True).status_code == 404
    assert api_error(api.seq_begin, tid, [SequentialFile("/../up", "x", False)], True).status_code == 400
    assert api_error(api.seq_begin, tid, [SequentialFile("/", "a/b", False)], True).status_code == 400
    # upload with nothing open
    assert api_error(seq_put, api, tid, folder, flist[0]).status_code == 400

    api.seq_begin(tid, flist, True)
    exc = api_error(api.seq_begin, tid, flist, True)
    assert exc.status_code == 400 and "Target busy" in str(exc), exc  # what makes the CLI resume
    seq_put(api, tid, folder, flist[0])
    assert api_error(seq_put, api, tid, folder, flist[0]).status_code == 409
    (folder / "extra.txt").write_bytes(b"not in the list")
    assert api_error(seq_put, api, tid, folder, SequentialFile("/", "extra.txt", False)).status_code == 400
    assert api_error(api.seq_finish, tid).status_code == 409
    assert seq_state(api, tid)[(flist[0].path, flist[0].name)] is True

    api.seq_terminate(tid)
    assert api_error(api.seq_check, tid).status_code in (400, 404)
    assert api_error(seq_put, api, tid, folder, flist[1]).status_code == 400
    assert api.get_target(tid)[1] == []
    assert read_tree(location) == {}, "a terminated upload leaves nothing in the target folder"
    api.seq_begin(tid, flist, True)  # free again
    assert not any(seq_state(api, tid).values())


def test_seq_upload_survives_restart(server, loc, work):
    s = server()
    location = loc("seq")
    tid = make_target(s.api, location, kind="multi")
    folder = write_tree(work / "src", SAMPLE_TREE)
    flist = seq_list(SAMPLE_TREE)
    s.api.seq_begin(tid, flist, True)
    seq_put(s.api, tid, folder, flist[0])
    seq_put(s.api, tid, folder, flist[1])

    s.restart()
    api = s.api
    state = seq_state(api, tid)
    assert state == {(f.path, f.name): i < 2 for i, f in enumerate(flist)}
    # the scheduled purge leaves a recent upload alone
    api.force_run_job("stale_seq_upload_job")
    assert seq_state(api, tid) == state
    for f in flist[2:]:
        seq_put(api, tid, folder, f)
    api.seq_finish(tid)
    b = wait_new_backup(s, tid, set())
    assert b["manual"] is True
    assert read_tree(location / f"b-{b['id']}") == SAMPLE_TREE


# ---------------------------------------------------------------------------------------------
# API key
# ---------------------------------------------------------------------------------------------


def test_api_key(server, loc, work):
    s = server(key=True)
    assert KEY_RE.match(s.key)
    good = s.api
    wrong = API("127.0.0.1", s.port, "bakch-" + "0" * 64)
    empty = API("127.0.0.1", s.port, "")
    location = loc("k")

    calls = [
        lambda a: a.list_targets(),
        lambda a: a.view_stats(),
        lambda a: a.get_log(0),
        lambda a: a.list_jobs(),
        lambda a: a.list_recycled_backups(),
        lambda a: a.force_run_job("recycle_job"),
        lambda a: make_target(a, location, name="sneaky"),
    ]
    for call in calls:
        assert api_error(call, wrong).status_code == 403
        # an empty Bearer token is "no key": 401 (missing) or 403 (wrong) are both honest
        assert api_error(call, empty).status_code in (401, 403)
    assert good.list_targets() == [], "refused calls changed nothing"

    tid = make_target(good, location)
    (work / "f.txt").write_bytes(b"secret")
    with open(work / "f.txt", "rb") as f:
        assert api_error(wrong.upload_backup, tid, f, "f.txt", True).status_code == 403
    assert good.get_target(tid)[1] == []
    b = upload(s, tid, work / "f.txt", api=good)
    out = work / "dl"
    out.mkdir()
    assert api_error(wrong.download_backup, b["id"], str(out)).status_code == 403
    assert list(out.iterdir()) == []

    r = requests.get(f"{s.url}/api/stats", timeout=10)  # no Authorization header at all
    assert r.status_code == 401 and r.json()["success"] is False and r.json().get("message")
    r = s.http("GET", "stats", headers={"Authorization": f"Basic {s.key}"})
    assert r.status_code == 401 and r.json()["success"] is False


def test_new_api_key_without_restart(server, bakch_bin, loc):
    s = server()
    open_api = s.api
    assert open_api.list_targets() == []  # no key file: open, the empty Bearer is ignored

    key = new_api_key(bakch_bin, s.data_dir)
    assert api_error(open_api.list_targets).status_code in (401, 403)
    keyed = API("127.0.0.1", s.port, key)
    assert keyed.list_targets() == []

    # newapikey refuses to overwrite without --overwrite
    again = subprocess.run([str(bakch_bin), "newapikey", "--data-dir", str(s.data_dir)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0
    assert (s.data_dir / "apikey.json").read_text().count(key) == 1

    key2 = new_api_key(bakch_bin, s.data_dir, overwrite=True)
    assert key2 != key
    assert api_error(keyed.list_targets).status_code == 403
    assert API("127.0.0.1", s.port, key2).list_targets() == []
