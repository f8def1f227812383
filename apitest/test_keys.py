"""Named keys with the official client: an upload key made by `bakch key add` uploads with the
`backupchan` CLI (plain and sequential) and is refused, with nothing changed, for `target delete`."""

from __future__ import annotations

import subprocess

from helpers import KEY_RE, SAMPLE_TREE, bakch_env, lines, make_target, ok, raw_backups, wait_new_backup, write_tree
from test_cli import cli_upload, failed


def add_key(s, *args: str) -> str:
    proc = subprocess.run([str(s.binary), "key", "add", *args, "--data-dir", str(s.data_dir)],
                          capture_output=True, text=True, timeout=60, env=bakch_env(s.data_dir))
    assert proc.returncode == 0, proc
    key = proc.stdout.strip().splitlines()[-1]
    assert KEY_RE.match(key), key
    return key


def test_upload_key_with_the_official_cli(server, cli, loc, work):
    s = server(key=True)
    api = s.api
    tid = make_target(api, loc("single"))
    multi = make_target(api, loc("multi"), name="m", kind="multi", template="m-$I")
    other = make_target(api, loc("other"), name="other", template="o-$I")
    admin = s.key
    s.key = add_key(s, "laptop", "--role", "upload", "--target", tid, "--target", multi)
    c = cli(s)  # configured with the upload key
    s.key = admin

    report = work / "report.txt"
    report.write_text("nightly\n")
    b = cli_upload(s, c, tid, report)
    assert b["target_id"] == tid
    folder = write_tree(work / "up", SAMPLE_TREE)
    assert lines(ok(c("backup", "upload", "-s", multi, folder)))[-1] == "Backup uploaded."
    wait_new_backup(s, multi, set())

    failed(c("target", "delete", tid), "Failed to delete target:", "(code 403)")
    failed(c("target", "delete", other), "Failed to delete target:", "(code 403)")
    failed(c("backup", "upload", other, report), "Failed to upload backup:", "(code 403)")
    assert sorted(t.id for t in api.list_targets()) == sorted([tid, multi, other])
    assert [x["id"] for x in raw_backups(s, tid)] == [b["id"]]
    assert raw_backups(s, other) == []
