// PacketTotal pages: uploads with progress, live job status. Plain script, served by the app.
// Text from the server is only ever set with textContent, never as HTML.
"use strict";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function sizeText(n) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i ? n.toFixed(1) + " " + units[i] : n + " bytes";
}

function watch(statusUrl, onChange) {
  // quick at first (most captures take well under a second), then backing off to 3 s
  let last = null, delay = 250;
  const again = () => { setTimeout(tick, delay); delay = Math.min(delay * 1.3, 3000); };
  const tick = () => fetch(statusUrl, {headers: {accept: "application/json"}})
    .then(r => r.json())
    .then(c => {
      if (c.status !== last) { last = c.status; onChange(c); }
      if (["queued", "running", "indexing"].includes(c.status)) again();
    })
    .catch(again);
  tick();
}

function uploadOne(file, list, maxBytes, single) {
  const item = el("li", "upload-item");
  item.appendChild(el("span", "upload-name", file.name));
  const bar = el("progress");
  bar.max = 100; bar.value = 0;
  item.appendChild(bar);
  const note = el("span", "upload-note", "uploading…");
  item.appendChild(note);
  list.appendChild(item);
  if (file.size > maxBytes) {
    bar.remove();
    note.className = "upload-note refused";
    note.textContent = "Refused: the file is " + sizeText(file.size) + ", over the limit of " + sizeText(maxBytes);
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/v1/captures");
  const csrf = document.querySelector('meta[name="csrf-token"]');
  if (csrf) xhr.setRequestHeader("x-csrf-token", csrf.content);  // a logged-in session's (web/access.py)
  xhr.responseType = "json";
  xhr.upload.onprogress = e => { if (e.lengthComputable) bar.value = 100 * e.loaded / e.total; };
  xhr.onerror = () => { note.className = "upload-note refused"; note.textContent = "Upload failed: the connection was lost"; };
  xhr.onload = () => {
    const body = xhr.response || {};
    bar.value = 100;
    if (xhr.status >= 400) {
      bar.remove();
      note.className = "upload-note refused";
      note.textContent = "Refused: " + (body.detail || xhr.statusText);
      return;
    }
    // 202: a new capture; a known capture was redirected (303) to its JSON, which the browser followed.
    const id = body.id;
    const page = "/captures/" + id;
    note.textContent = "";
    const link = el("a", "", xhr.status === 202 ? "queued" : "already analysed: open");
    link.href = page;
    note.appendChild(link);
    watch("/api/v1/captures/" + id, c => {
      link.textContent = c.status === "done" ? "done: open the analysis" : c.status === "failed" ? "failed: " + (c.error || "") : c.status + "…";
      if (c.status === "failed") note.className = "upload-note refused";
      if (c.status === "done" && single) window.location.assign(page);
    });
  };
  xhr.send(form);
}

function setupUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("file-input");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("uploads");
  const maxBytes = Number(form.dataset.maxBytes);
  const send = files => {
    const all = Array.from(files);
    all.forEach(f => uploadOne(f, list, maxBytes, all.length === 1));
  };
  input.addEventListener("change", () => { send(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(t => zone.addEventListener(t, e => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach(t => zone.addEventListener(t, e => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", e => send(e.dataTransfer.files));
  form.addEventListener("submit", e => { e.preventDefault(); send(input.files); });
}

function setupStatus() {
  const job = document.getElementById("job");
  if (!job || !["queued", "running", "indexing"].includes(job.dataset.status)) return;
  watch(job.dataset.statusUrl, c => { if (c.status !== job.dataset.status) window.location.reload(); });
}

// "/" goes to the search box, unless the key is typed into a field.
function setupSlash() {
  document.addEventListener("keydown", e => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    const t = e.target;
    if (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) return;
    const box = document.querySelector(".searchbar input");
    if (!box) return;
    e.preventDefault();
    box.focus();
    box.select();
  });
}

// A cut value shows whole on a click (not on a link in it, nor when text is being selected to copy).
function setupCuts() {
  document.addEventListener("click", e => {
    const cut = e.target.closest(".cut");
    if (!cut || e.target.closest("a") || String(window.getSelection())) return;
    cut.classList.toggle("open");
  });
}

// What a table cell opens (a raw record, a rule, a packet's layers) shows in a row of its own below,
// the table's full width, rather than widening its column. The text is copied as a node, never parsed.
function setupOpenRows() {
  document.documentElement.classList.add("js");
  const rows = new WeakMap();
  document.addEventListener("toggle", e => {
    const d = e.target;
    const pre = d instanceof HTMLDetailsElement ? d.querySelector(":scope > pre") : null;
    const tr = d.parentElement && d.parentElement.tagName === "TD" ? d.parentElement.parentElement : null;
    if (!pre || !tr) return;
    if (d.open && !rows.has(d)) {
      const row = el("tr", "raw");
      const cell = el("td");
      cell.colSpan = Array.from(tr.cells).reduce((n, c) => n + c.colSpan, 0);
      cell.appendChild(pre.cloneNode(true));
      row.appendChild(cell);
      let after = tr;
      while (after.nextElementSibling && after.nextElementSibling.classList.contains("raw")) after = after.nextElementSibling;
      after.after(row);
      rows.set(d, row);
    } else if (!d.open && rows.has(d)) {
      rows.get(d).remove();
      rows.delete(d);
    }
  }, true);
}

setupOpenRows();
document.addEventListener("DOMContentLoaded", () => { setupUpload(); setupStatus(); setupSlash(); setupCuts(); });
