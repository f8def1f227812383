// bakch: the little JavaScript the pages use. Everything works without it except upload
// progress. Loaded from a file (the CSP forbids inline scripts).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  setupRecycleToggle();
  setupSelectAll();
  setupUpload();
  showUploadSummary();
  setupCopy();
  setupRetentionPreview();
});

// Edit form: the retention preview follows the policy fields as they are typed. The server
// renders the fragment (escaped there); a newer answer always wins over an older one.
function setupRetentionPreview() {
  const box = document.getElementById("retention-preview");
  if (!box || !box.dataset.url) return;
  const form = box.closest("form");
  const isPolicy = (name) => ["recycle_criteria", "recycle_value", "recycle_action", "min_backups"].includes(name) ||
    name.startsWith("keep_");
  let timer = null;
  let asked = 0;
  const refresh = () => {
    const params = new URLSearchParams();
    [...form.elements].forEach((el) => { if (el.name && isPolicy(el.name)) params.append(el.name, el.value); });
    const mine = ++asked;
    box.setAttribute("aria-busy", "true");
    fetch(box.dataset.url + "?" + params.toString(), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((res) => res.text())
      .then((html) => {
        if (mine !== asked) return;
        box.innerHTML = html;
        box.removeAttribute("aria-busy");
      })
      .catch(() => {
        if (mine !== asked) return;
        box.removeAttribute("aria-busy");
        box.textContent = "The preview could not be loaded; “Preview retention” shows it.";
      });
  };
  const changed = (e) => {
    if (!e.target.name || !isPolicy(e.target.name)) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
}

// Command boxes: a Copy button (the text stays selectable without script).
function setupCopy() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", () => {
      navigator.clipboard.writeText(button.dataset.copy).then(
        () => { button.textContent = "Copied"; },
        () => { button.textContent = "Select and copy"; });
    });
  });
}

// Job page: after a browser upload, say how it went (the upload page stored it).
function showUploadSummary() {
  const box = document.getElementById("upload-summary");
  if (!box) return;
  let info = null;
  try { info = JSON.parse(sessionStorage.getItem("bakch-upload") || "null"); } catch (_) { /* ignore */ }
  if (!info || info.url !== window.location.pathname) return;
  box.hidden = false;
  box.textContent = "Uploaded " + humanSize(info.bytes) + " in " + humanTime(info.secs) +
    " (" + humanSize(info.secs > 0 ? info.bytes / info.secs : info.bytes) + "/s).";
}

// Target form: the recycle value and action mean nothing when the criteria is "none". They
// are only dimmed, never disabled: a disabled field is not sent, and the form would come back
// from an error (or a later change of criteria) with the values gone.
function setupRecycleToggle() {
  const criteria = document.querySelector("select[data-toggles]");
  if (!criteria) return;
  const box = document.getElementById(criteria.dataset.toggles);
  const apply = () => {
    box.classList.toggle("off", criteria.value === "none");
  };
  criteria.addEventListener("change", apply);
  apply();
}

// Backup tables: a header checkbox that selects every row.
function setupSelectAll() {
  document.querySelectorAll("input.select-all").forEach((all) => {
    all.hidden = false;
    const table = all.closest("table");
    all.addEventListener("change", () => {
      table.querySelectorAll("tbody input[type=checkbox]").forEach((cb) => { cb.checked = all.checked; });
    });
  });
}

function humanSize(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

function humanTime(s) {
  if (!isFinite(s)) return "…";
  s = Math.round(s);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

// Walks a dropped folder; resolves to [{file, path}].
function readEntry(entry, prefix) {
  return new Promise((resolve) => {
    if (entry.isFile) {
      entry.file((f) => resolve([{ file: f, path: prefix + f.name }]), () => resolve([]));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      const all = [];
      const next = () => reader.readEntries(async (entries) => {
        if (!entries.length) {
          const nested = await Promise.all(all.map((e) => readEntry(e, prefix + entry.name + "/")));
          resolve(nested.flat());
        } else { all.push(...entries); next(); }
      }, () => resolve([]));
      next();
    } else { resolve([]); }
  });
}

// Upload form: drag and drop, then XMLHttpRequest for a real progress bar with speed and
// time left; on success, the job's page (which follows the job until it ends).
function setupUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const multi = form.dataset.multi === "1";
  const drop = document.getElementById("drop-zone");
  const dropped = document.getElementById("dropped");
  const errorBox = document.getElementById("upload-error");
  let droppedFiles = null;

  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    const items = [...(e.dataTransfer.items || [])].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    let files;
    if (items.length) {
      files = (await Promise.all(items.map((it) => readEntry(it, "")))).flat();
    } else {
      files = [...e.dataTransfer.files].map((f) => ({ file: f, path: f.name }));
    }
    if (!multi && files.length > 1) { showError("This target takes one file per backup."); return; }
    droppedFiles = files;
    dropped.hidden = false;
    dropped.textContent = files.length + " file(s) ready: " + files.slice(0, 5).map((f) => f.path).join(", ") + (files.length > 5 ? ", …" : "");
  });

  function showError(msg) { errorBox.hidden = false; errorBox.textContent = msg; }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    errorBox.hidden = true;
    const data = new FormData();
    data.append("csrf", form.querySelector("input[name=csrf]").value);
    data.append("manual", form.querySelector("input[type=checkbox][name=manual]").checked ? "1" : "0");
    let entries = droppedFiles;
    if (!entries) {
      entries = [];
      form.querySelectorAll("input[type=file]").forEach((input) => {
        [...input.files].forEach((f) => entries.push({ file: f, path: f.webkitRelativePath || f.name }));
      });
    }
    if (!entries.length) { showError("Choose at least one file to upload."); return; }
    if (!multi && entries.length > 1) { showError("This target takes one file per backup."); return; }
    entries.forEach((en) => data.append("backup_file", en.file, en.path));

    const button = document.getElementById("upload-button");
    const bar = document.getElementById("progress-bar");
    const text = document.getElementById("progress-text");
    document.getElementById("progress").hidden = false;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = "Uploading…";
    // Leaving the page would cut the upload off: the browser asks first while it runs.
    const stay = (ev) => { ev.preventDefault(); ev.returnValue = ""; };
    window.addEventListener("beforeunload", stay);
    const done = () => {
      window.removeEventListener("beforeunload", stay);
      button.disabled = false;
      button.textContent = label;
    };
    const started = performance.now();
    const record = { events: 0, text: "", bytes: 0, secs: 0, url: "" };
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (ev) => {
      if (!ev.lengthComputable) return;
      const pct = (ev.loaded / ev.total) * 100;
      const secs = (performance.now() - started) / 1000;
      const speed = secs > 0 ? ev.loaded / secs : 0;
      const left = speed > 0 ? (ev.total - ev.loaded) / speed : Infinity;
      bar.value = pct;
      record.events += 1;
      record.bytes = ev.total;
      text.textContent = Math.floor(pct) + "% · " + humanSize(ev.loaded) + " of " + humanSize(ev.total) +
        " · " + humanSize(speed) + "/s · " + humanTime(left) + " left";
    });
    xhr.upload.addEventListener("load", () => {
      bar.value = 100;
      record.text = text.textContent;
      text.textContent += " · sent; storing it safely…";
    });
    xhr.addEventListener("load", () => {
      let reply = {};
      try { reply = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 200 && reply.url) {
        record.secs = (performance.now() - started) / 1000;
        record.url = reply.url;
        try { sessionStorage.setItem("bakch-upload", JSON.stringify(record)); } catch (_) { /* private mode */ }
        window.removeEventListener("beforeunload", stay);
        window.location.assign(reply.url);
        return;
      }
      done();
      showError("The upload failed: " + (reply.error || ("HTTP " + xhr.status)));
    });
    xhr.addEventListener("error", () => { done(); showError("The upload failed: the connection was lost."); });
    xhr.send(data);
  });
}
