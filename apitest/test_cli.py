"""The official `backupchan` CLI 0.14.2 against the real bakch binary: target, backup (file,
folder, sequential with resume, download), recyclebin, stats, log and job commands."""

from __future__ import annotations

import os
import queue
import re
import threading
from pathlib import Path

from helpers import (
    SAMPLE_TREE,
    extract_tar,
    lines,
    make_target,
    ok,
    prefixed,
    raw_backups,
    read_tree,
    seq_list,
    upload,
    wait_job,
    wait_new_backup,
    write_tree,
)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
JOB_LINE = re.compile(r"^Backup uploaded and is now being processed by job #(\d+)\.$")
DATE = r"[A-Z][a-z]+ \d\d, \d{4} \d\d:\d\d"


def failed(proc, *fragments: str):
    """Asserts a CLI failure (exit 1) whose stderr holds every fragment."""
    assert proc.returncode == 1, f"expected exit 1, got {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    for fragment in fragments:
        assert fragment in proc.stderr, f"{fragment!r} not in stderr:\n{proc.stderr}"


def job_id_of(proc) -> int:
    ok(proc)
    found = [m for m in map(JOB_LINE.match, lines(proc)) if m]
    assert len(found) == 1, proc.stdout
    return int(found[0].group(1))


def progress(out: list[str], total: int) -> list[str]:
    """Checks the seq upload lines `Upload file i of total: PATH` (i = 1, 2, ...); returns PATHs."""
    assert len(out) == total, out
    paths = []
    for i, line in enumerate(out):
        m = re.fullmatch(rf"Upload file {i + 1} of {total}: (\S+)", line)
        assert m, f"unexpected line {line!r} in {out}"
        paths.append(m.group(1))
    return paths


def cli_upload(s, c, target_id: str, path: Path, *flags: str) -> dict:
    """`backup upload [flags] TARGET PATH`, then waits for the job; returns the new backup JSON."""
    before = {b["id"] for b in raw_backups(s, target_id)}
    job_id = job_id_of(c("backup", "upload", *flags, target_id, path))
    job = wait_job(s, job_id)
    assert job["status"] == "FINISHED", job
    new = [b for b in raw_backups(s, target_id) if b["id"] not in before]
    assert len(new) == 1, new
    return new[0]


# ---------------------------------------------------------------------------------------------
# target
# ---------------------------------------------------------------------------------------------


def test_target_commands(server, cli, loc):
    s = server()
    c = cli(s)
    api = s.api
    location = loc("mine")
    assert lines(ok(c("target", "list")))[:3] == ["Showing page 1", "", "There are no targets."]

    # `target new` only works with --tags (Q1); it then sends [","], which the server drops
    out = ok(c("target", "new", "-n", "My files", "-t", "multi", "-c", "count", "-v", "3", "-a", "recycle",
               "-l", location, "-m", "b-$I", "-s", "mine", "--tags", "x"))
    m = re.fullmatch(r"Created new target\. ID: (\S+)", out.stdout.strip())
    assert m, out.stdout
    tid = m.group(1)
    t, backups = api.get_target(tid)
    assert (t.name, t.target_type, t.recycle_criteria, t.recycle_value, t.recycle_action, t.location,
            t.name_template, t.deduplicate, t.alias, t.tags) == (
        "My files", "multi", "count", 3, "recycle", str(location), "b-$I", False, "mine", [])
    assert backups == []

    block = lines(ok(c("target", "list")))
    assert block == [
        "Showing page 1", "",
        " 1. |  My files",
        "    | Alias: mine",
        f"    | ID: {tid}",
        "    | Type: Multiple files",
        "    | Recycle criteria: After 3 copies",
        "    | Recycle action: Recycle",
        f"    | Location: {location}",
        "    | Name template: b-$I",
        "    | Deduplication off",
        "    | Tags: None",
        "=========",
    ]
    assert lines(ok(c("target", "list", "-c"))) == [
        "Showing page 1", "",
        f" 1. My files ({tid} / alias='mine') / Multiple files / Recycle after 3 copies / {location} / b-$I / dedup=off",
    ]
    view = lines(ok(c("target", "view", "mine")))
    assert view == [
        "Name: My files", "Alias: mine", f"ID: {tid}", "Type: Multiple files",
        "Recycle criteria: After 3 copies", "Recycle action: Recycle", f"Location: {location}",
        "Name template: b-$I", "Deduplication off", "Tags: None", "=========",
        "This target has no backups.",
    ]
    failed(c("target", "view", UNKNOWN_ID), "Target not found. Halting.")

    # edit: the CLI echoes every other field back (Q3)
    assert lines(ok(c("target", "edit", tid, "-n", "Renamed", "--tags", "a,b", "-d", "-v", "5"))) == ["Target edited."]
    t = api.get_target(tid)[0]
    assert (t.name, t.tags, t.deduplicate, t.recycle_value, t.alias, t.name_template, t.location,
            t.recycle_criteria, t.target_type) == (
        "Renamed", ["a", "b"], True, 5, "mine", "b-$I", str(location), "count", "multi")
    ok(c("target", "edit", tid, "--clear-tags"))
    assert api.get_target(tid)[0].tags == []
    failed(c("target", "edit", UNKNOWN_ID, "-n", "x"), "Target not found. Halting.")

    # a single-file target with criteria none; `--tags ,` sends ["", ""]
    single_loc = loc("single")
    out = ok(c("target", "new", "-n", "Single", "-t", "single", "-c", "none", "-l", single_loc,
               "-m", "s-$D", "--tags", ","))
    sid = re.fullmatch(r"Created new target\. ID: (\S+)", out.stdout.strip()).group(1)
    st = api.get_target(sid)[0]
    assert (st.target_type, st.recycle_criteria, st.alias, st.tags) == ("single", "none", None, [])
    view = lines(ok(c("target", "view", sid)))
    assert "Recycle criteria: None" in view and not any(v.startswith("Recycle action") for v in view)
    assert "Alias: None" not in view and not any(v.startswith("Alias") for v in view)
    failed(c("target", "new", "-n", "Dup", "-t", "single", "-c", "none", "-l", single_loc, "-m", "s-$D",
             "--tags", "x"), "Failed to create new target: Server returned error:")
    assert len(api.list_targets()) == 2

    # search: only -n arrives where meant (Q2); every search also carries an empty alias=
    res = lines(ok(c("target", "search", "-n", "Renam")))
    assert res == [
        "1 target matched your search.",
        f" 1. Renamed ({tid} / alias='mine') / Multiple files / Recycle after 5 copies / {location} / b-$I / dedup=on",
    ]
    assert lines(ok(c("target", "search", "-n", "zzz"))) == ["0 targets matched your search."]
    assert lines(ok(c("target", "search", "-n", "e")))[0] == "2 targets matched your search."
    failed(c("target", "search"), "Failed to search targets:", "(code 400). Halting.")

    assert lines(ok(c("target", "delete", sid))) == ["Target deleted."]
    assert [x.id for x in api.list_targets()] == [tid]
    failed(c("target", "delete", UNKNOWN_ID), "Failed to delete target:", "(code 404)")


def test_target_deletebackups_and_deleterecycled(server, cli, loc, work):
    s = server()
    c = cli(s)
    api = s.api
    location = loc("t")
    tid = make_target(api, location)
    (work / "f.txt").write_bytes(b"data")
    b1, b2, b3 = (upload(s, tid, work / "f.txt") for _ in range(3))
    api.recycle_backup(b1["id"], True)

    assert lines(ok(c("target", "deleterecycled", tid, "-d"))) == ["Target recycled backups deleted."]
    assert {b.id for b in api.get_target(tid)[1]} == {b2["id"], b3["id"]}
    assert api.list_recycled_backups() == []

    assert lines(ok(c("target", "deletebackups", tid, "-d"))) == ["Target backups deleted."]
    assert api.get_target(tid)[1] == []
    assert read_tree(location) == {}
    failed(c("target", "deletebackups", UNKNOWN_ID), "Failed to delete target backups:", "(code 404)")
    failed(c("target", "deleterecycled", UNKNOWN_ID), "Failed to delete target recycled backups:", "(code 404)")


# ---------------------------------------------------------------------------------------------
# backup upload
# ---------------------------------------------------------------------------------------------


def test_backup_upload_file(server, cli, loc, work):
    s = server()
    c = cli(s)
    location = loc("single")
    tid = make_target(s.api, location)
    report = work / "report.pdf"
    report.write_bytes(os.urandom(5000))

    b = cli_upload(s, c, tid, report)
    assert b["manual"] is True and b["filesize"] == 5000
    assert (location / f"b-{b['id']}.pdf").read_bytes() == report.read_bytes()
    auto = cli_upload(s, c, tid, report, "-a")
    assert auto["manual"] is False
    assert (location / f"b-{auto['id']}.pdf").read_bytes() == report.read_bytes()

    view = lines(ok(c("target", "view", tid)))
    i = view.index("Backups (pass -r to view recycled ones too):")
    rows = view[i + 2:]
    assert len(rows) == 2
    by_id = {x["id"]: x for x in (b, auto)}
    for row in rows:
        m = re.fullmatch(rf" \d\. \| ID: (\S+) \| created {DATE} \| 4\.88 KiB \| Uploaded (manually|automatic)", row)
        assert m, row
        assert m.group(2) == ("manually" if by_id[m.group(1)]["manual"] else "automatic")

    failed(c("backup", "upload", UNKNOWN_ID, report), "Failed to upload backup: Server returned error:", "(code 404)")
    folder = write_tree(work / "up", SAMPLE_TREE)
    failed(c("backup", "upload", tid, folder), "Failed to upload backup: Cannot upload directory to a single file target")
    assert len(s.api.get_target(tid)[1]) == 2


def test_backup_upload_folder(server, cli, loc, work):
    s = server()
    c = cli(s)
    location = loc("multi")
    tid = make_target(s.api, location, kind="multi")
    folder = write_tree(work / "up", SAMPLE_TREE)

    b = cli_upload(s, c, tid, folder)
    assert b["filesize"] == sum(len(v) for v in SAMPLE_TREE.values())
    assert read_tree(location / f"b-{b['id']}") == prefixed("up", SAMPLE_TREE)

    # with a trailing slash the client sends ".tar.gz" holding a member with an empty name (P10)
    b2 = cli_upload(s, c, tid, f"{folder}/")
    assert read_tree(location / f"b-{b2['id']}") == SAMPLE_TREE


def test_backup_upload_sequential(server, cli, loc, work):
    s = server()
    c = cli(s)
    location = loc("seq")
    tid = make_target(s.api, location, kind="multi")
    folder = write_tree(work / "src", SAMPLE_TREE)

    out = lines(ok(c("backup", "upload", "-s", tid, folder)))
    assert out[-1] == "Backup uploaded."
    assert sorted(progress(out[:-1], 4)) == sorted("/" + p for p in SAMPLE_TREE)
    b = wait_new_backup(s, tid, set())
    assert b["manual"] is True
    assert read_tree(location / f"b-{b['id']}") == SAMPLE_TREE

    # --exclude: patterns match "/dir/name"
    out = lines(ok(c("backup", "upload", tid, folder, "-s", "-a", "-e", "*.dat", "/a.txt")))
    assert out[-1] == "Backup uploaded."
    assert sorted(progress(out[:-1], 2)) == ["/sub/b.txt", "/sub/deeper/c.bin"]
    b2 = wait_new_backup(s, tid, {b["id"]})
    assert b2["manual"] is False
    expected = {k: v for k, v in SAMPLE_TREE.items() if k not in ("sub/empty.dat", "a.txt")}
    assert read_tree(location / f"b-{b2['id']}") == expected

    failed(c("backup", "upload", "-s", UNKNOWN_ID, folder), "Failed to upload backup:", "(code 404)")


def test_sequential_resume_after_partial_upload(server, cli, loc, work):
    """An earlier run got half way (done here through the lib); the CLI hits `Target busy`, asks
    the server what it has and sends only the rest."""
    s = server()
    c = cli(s)
    api = s.api
    location = loc("seq")
    tid = make_target(api, location, kind="multi")
    folder = write_tree(work / "src", SAMPLE_TREE)
    flist = seq_list(SAMPLE_TREE)
    api.seq_begin(tid, flist, True)
    for f in flist[:2]:
        with open(folder / f.path.lstrip("/") / f.name, "rb") as fh:
            api.seq_upload(tid, fh, f)

    out = lines(ok(c("backup", "upload", "-s", tid, folder)))
    rest = [os.path.join(f.path, f.name) for f in flist[2:]]
    assert out[0] == "Upload interrupted, continuing."
    assert out[-1] == "Backup uploaded."
    assert sorted(progress(out[1:-1], 2)) == sorted(rest)
    b = wait_new_backup(s, tid, set())
    assert read_tree(location / f"b-{b['id']}") == SAMPLE_TREE


def test_sequential_resume_after_killed_run(server, cli, loc, work):
    """The first CLI run is killed part way (SIGKILL, no chance to terminate the upload); the
    second run resumes and the finished backup holds every file, intact."""
    s = server()
    c = cli(s)
    api = s.api
    location = loc("seq")
    tid = make_target(api, location, kind="multi")
    files = {f"d{i % 4}/file{i:02}.bin": os.urandom(256 * 1024) for i in range(40)}
    folder = write_tree(work / "src", files)

    proc = c.popen("backup", "upload", "-s", tid, folder)
    seen: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [seen.put(line) for line in proc.stdout] + [seen.put(None)],
                     daemon=True).start()
    first_lines = []
    try:
        while True:
            line = seen.get(timeout=60)
            assert line is not None, f"the first run ended before it could be interrupted: {first_lines} {proc.stderr.read()}"
            first_lines.append(line.rstrip("\n"))
            if line.startswith("Upload file 4 of 40"):
                proc.kill()
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert "Backup uploaded." not in first_lines

    state = {(f.path, f.name): f.uploaded for f in api.seq_check(tid)}
    assert len(state) == 40
    done_before = sum(state.values())
    assert 3 <= done_before < 40, f"{done_before} files uploaded by the killed run"
    assert api.get_target(tid)[1] == []

    out = lines(ok(c("backup", "upload", "-s", tid, folder)))
    assert out[0] == "Upload interrupted, continuing."
    assert out[-1] == "Backup uploaded."
    resumed = progress(out[1:-1], len(out) - 2)
    assert 1 <= len(resumed) <= 40 - 3
    assert len(set(resumed)) == len(resumed)
    assert set(resumed) <= {"/" + p for p in files}
    b = wait_new_backup(s, tid, set())
    assert read_tree(location / f"b-{b['id']}") == files
    assert b["filesize"] == 40 * 256 * 1024


# ---------------------------------------------------------------------------------------------
# backup download, delete, recycle, restore
# ---------------------------------------------------------------------------------------------


def test_backup_download(server, cli, loc, work):
    s = server()
    c = cli(s)
    api = s.api
    single = make_target(api, loc("s"))
    multi = make_target(api, loc("m"), name="m", kind="multi", template="m-$I")
    data = os.urandom(123_456)
    (work / "blob.bin").write_bytes(data)
    bs = upload(s, single, work / "blob.bin")
    folder = write_tree(work / "up", SAMPLE_TREE)
    bm = cli_upload(s, c, multi, folder)

    out_dir = work / "out"
    out_dir.mkdir()
    target_file = out_dir / f"b-{bs['id']}.bin"
    assert lines(ok(c("backup", "download", bs["id"], "-d", out_dir))) == [f"Backup saved as '{target_file}'."]
    assert target_file.read_bytes() == data

    # default directory: the current one
    here = c.home / "cwd"
    assert lines(ok(c("backup", "download", bs["id"]))) == [f"Backup saved as './b-{bs['id']}.bin'."]
    assert (here / f"b-{bs['id']}.bin").read_bytes() == data

    tar_file = out_dir / f"m-{bm['id']}.tar"
    assert lines(ok(c("backup", "download", bm["id"], "--directory", out_dir))) == [f"Backup saved as '{tar_file}'."]
    assert extract_tar(tar_file, work / "extracted") == prefixed("up", SAMPLE_TREE)

    failed(c("backup", "download", UNKNOWN_ID, "-d", out_dir),
           "Failed to upload backup: Server returned error (code 404). Halting.")


def test_backup_delete_recycle_restore(server, cli, loc, work):
    s = server()
    c = cli(s)
    api = s.api
    location = loc("r")
    tid = make_target(api, location)
    (work / "f.txt").write_bytes(b"four")
    b1, b2, b3 = (upload(s, tid, work / "f.txt") for _ in range(3))
    p1, p2, p3 = (location / f"b-{b['id']}.txt" for b in (b1, b2, b3))

    assert lines(ok(c("backup", "recycle", b1["id"]))) == ["Backup recycled."]
    assert [x.id for x in api.list_recycled_backups()] == [b1["id"]]
    assert not p1.exists()
    view = lines(ok(c("target", "view", tid, "-r")))
    assert "Backups:" in view
    assert any(re.fullmatch(rf" \d\. \| ID: {b1['id']} \| created {DATE} \| recycled \| 4\.00 B \| Uploaded manually", v)
               for v in view), view
    plain_view = lines(ok(c("target", "view", tid)))
    assert not any(b1["id"] in v for v in plain_view)

    assert lines(ok(c("backup", "restore", b1["id"]))) == ["Backup restored."]
    assert api.list_recycled_backups() == [] and p1.read_bytes() == b"four"

    assert lines(ok(c("backup", "delete", b2["id"], "-d"))) == ["Backup deleted."]
    assert not p2.exists()
    assert lines(ok(c("backup", "delete", b3["id"]))) == ["Backup deleted."]
    assert p3.read_bytes() == b"four", "without -d the files stay"
    assert [x.id for x in api.get_target(tid)[1]] == [b1["id"]]

    for cmd in ("delete", "recycle", "restore"):
        failed(c("backup", cmd, UNKNOWN_ID), "Backup not found. Halting.")


# ---------------------------------------------------------------------------------------------
# recyclebin, stats, log, job
# ---------------------------------------------------------------------------------------------


def test_recyclebin(server, cli, loc, work):
    s = server()
    c = cli(s)
    api = s.api
    location = loc("rb")
    tid = make_target(api, location)
    (work / "f.txt").write_bytes(b"four")
    b1, b2 = (upload(s, tid, work / "f.txt") for _ in range(2))

    assert lines(ok(c("recyclebin", "view"))) == ["There are no backups in the recycle bin."]
    api.recycle_backup(b1["id"], True)
    rows = lines(ok(c("recyclebin", "show")))
    assert len(rows) == 1
    assert re.fullmatch(rf" 1\. \| ID: {b1['id']} \| created {DATE} \| 4\.00 B \| Uploaded manually", rows[0]), rows

    assert lines(ok(c("recyclebin", "clear", "-d"))) == ["Recycle bin cleared."]
    assert api.list_recycled_backups() == []
    assert [x.id for x in api.get_target(tid)[1]] == [b2["id"]]
    assert read_tree(location) == {f"b-{b2['id']}.txt": b"four"}
    assert lines(ok(c("recyclebin", "view"))) == ["There are no backups in the recycle bin."]


def test_stats(server, cli, loc, work):
    s = server()
    c = cli(s)
    api = s.api
    version = api.view_stats().program_version
    assert lines(ok(c("stats", "view"))) == [
        f" | Server version: {version}",
        " | Total size of all targets: 0.00 B",
        " | Total size of recycle bin: 0.00 B",
        " | Total number of targets: 0",
        " | Total number of backups: 0 (0 recycled)",
    ]
    tid = make_target(api, loc("s"))
    (work / "a.txt").write_bytes(b"a" * 1000)
    (work / "b.txt").write_bytes(b"b" * 2048)
    upload(s, tid, work / "a.txt")
    rb = upload(s, tid, work / "b.txt")
    api.recycle_backup(rb["id"], True)
    assert lines(ok(c("stats", "show"))) == [
        f" | Server version: {version}",
        " | Total size of all targets: 1000.00 B",
        " | Total size of recycle bin: 2.00 KiB",
        " | Total number of targets: 1",
        " | Total number of backups: 2 (1 recycled)",
    ]


def test_log(server, cli, loc):
    s = server()
    c = cli(s)
    make_target(s.api, loc("l"))
    full = ok(c("log", "view"))
    assert full.stdout.strip()
    assert len(full.stdout.splitlines()) > 3
    tail = ok(c("log", "show", "-t", "3")).stdout.rstrip("\n").splitlines()
    assert 1 <= len(tail) <= 3
    assert all(t in s.api.get_log(0).splitlines() for t in tail)


def test_job_commands(server, cli, loc, work):
    s = server()
    c = cli(s)
    tid = make_target(s.api, loc("j"))
    out = lines(ok(c("job", "list")))
    assert out[0] == "There are currently no delayed jobs."
    assert "Scheduled jobs:" in out

    (work / "f.txt").write_bytes(b"x")
    job_id = job_id_of(c("backup", "upload", tid, work / "f.txt"))
    assert wait_job(s, job_id)["status"] == "FINISHED"
    out = lines(ok(c("job", "list")))
    assert out[0] == "Delayed jobs:"
    assert any(re.fullmatch(rf"#{job_id} / upload_job / Status: FINISHED / Start time: {DATE} / End time: {DATE}", x)
               for x in out), out
    sched = out[out.index("Scheduled jobs:") + 1:]
    for name in ("recycle_job", "stale_seq_upload_job"):
        assert any(re.fullmatch(rf"{name} / Interval: \d+ / Next run at {DATE}", x) for x in sched), sched

    assert lines(ok(c("job", "forcerun", "recycle_job"))) == [
        "Scheduled job recycle_job has been started. Check the log for more details."]
    failed(c("job", "forcerun", "no_such_job"), "(code 404)")


def test_cli_with_api_key(server, cli, loc, work):
    s = server(key=True)
    c = cli(s)
    assert lines(ok(c("config", "view"))) == ["Host: 127.0.0.1", f"Port: {s.port}", f"API key: {s.key}"]
    assert lines(ok(c("target", "list")))[-1] == "There are no targets."
    tid = make_target(s.api, loc("k"))
    (work / "f.txt").write_bytes(b"x")
    b = cli_upload(s, c, tid, work / "f.txt")
    assert b["filesize"] == 1
    failed(c("--api-key", "bakch-" + "0" * 64, "target", "list"), "(code 403)")
    failed(c("--api-key", "bakch-" + "0" * 64, "backup", "upload", tid, work / "f.txt"),
           "Failed to upload backup: Server returned error:", "(code 403)")
    assert len(s.api.get_target(tid)[1]) == 1
