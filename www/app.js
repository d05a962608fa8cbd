// The preview page: the form and the pictures. Every computation happens in worker.js (the
// WebAssembly core); this module only sends files and settings there and renders the answers.

import { donut, heatmap, hbars, rateBar, COLORS } from "./charts.js";
import { readDataSource, writeDataSource, toToml, dataSourceSpec, applyKind } from "./datasource.js";
import { servedByApi, fetchTables } from "./server.js";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const fmt = new Intl.NumberFormat("en-US");
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const bytes = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KB` : `${(n / (1 << 20)).toFixed(1)} MB`);

// ---------------------------------------------------------------------------------------------
// The worker

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
let nextId = 1;
const pending = new Map();
worker.onmessage = ({ data }) => {
  const call = pending.get(data.id);
  if (!call) return;
  if (data.progress) return call.progress?.(data.progress);
  pending.delete(data.id);
  if (data.error) call.reject(Object.assign(new Error(data.error.message), data.error));
  else call.resolve(data.ok);
};
worker.onerror = (event) => {
  event.preventDefault();
  showError($('[data-testid="import-error"]'), { message: `the worker failed: ${event.message}` });
};
function call(op, args = {}, progress) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, progress });
    worker.postMessage({ id, op, ...args });
  });
}

// ---------------------------------------------------------------------------------------------
// Progress

const bar = $(".progress");
let busy = 0;
const PHASES = { "read-file": "reading", copy: "copying into WebAssembly", read: "parsing", import: "matching" };
function progressFor(label) {
  busy++;
  bar.hidden = false;
  return {
    update(p) {
      const fraction = p.total ? p.done / p.total : 0;
      $(".progress-bar", bar).style.width = `${Math.round(fraction * 100)}%`;
      $(".progress-text", bar).textContent = `${label}: ${PHASES[p.phase] ?? p.phase} ${p.total ? bytes(p.done) + " / " + bytes(p.total) : ""}`;
    },
    done() {
      if (--busy === 0) bar.hidden = true;
    },
  };
}

function showError(box, error) {
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  const where = [error.file, error.line ? `line ${error.line}` : null, error.column ? `column ${error.column}` : null]
    .filter(Boolean)
    .join(", ");
  box.innerHTML = `<strong>${esc(where || "error")}</strong>${error.reason ? ` <span class="tag">${esc(error.reason)}</span>` : ""}<pre>${esc(error.message)}</pre>`;
  box.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// State

const state = {
  recipients: null, // LoadSummary
  links: null,
  audience: [], // [{file, format, columns}]
  imported: null,
  unmatchedOffset: 0,
};
const PAGE = 10;

// ---------------------------------------------------------------------------------------------
// Files

function summaryHtml(title, summary) {
  const bad = summary.bad
    .slice(0, 5)
    .map((b) => `<li><span class="line">line ${b.line}${b.column ? `:${b.column}` : ""}</span> <span class="tag">${esc(b.reason)}</span> ${esc(b.detail ?? "")}</li>`)
    .join("");
  const extra = summary.merged ? ` · ${fmt.format(summary.merged)} merged` : "";
  const cols = summary.schema ? `<div class="cols">${summary.schema.columns.map(([c, t]) => `<span class="col">${esc(c)} <em>${t}</em></span>`).join("")}</div>` : "";
  return `<div class="fr-head"><span class="fr-title">${esc(title)}</span><span class="fr-name">${esc(summary.file)}</span><span class="muted">${bytes(summary.size ?? 0)}</span></div>
  <div class="fr-stats"><span><b data-testid="rows">${fmt.format(summary.rows)}</b> rows</span><span class="${summary.rejected ? "bad" : ""}"><b data-testid="rejected">${fmt.format(summary.rejected)}</b> rejected</span>${extra ? `<span class="muted">${extra}</span>` : ""}</div>
  ${bad ? `<ul class="bad-list">${bad}</ul>${summary.rejected > 5 ? `<div class="muted">… and ${fmt.format(summary.rejected - 5)} more</div>` : ""}` : ""}${cols}`;
}

async function loadTable(kind, file) {
  const box = $(`[data-testid="file-${kind}"]`);
  box.hidden = false;
  box.classList.remove("failed");
  box.innerHTML = `<div class="fr-head"><span class="fr-name">${esc(file.name)}</span> <span class="muted">loading…</span></div>`;
  const progress = progressFor(file.name);
  try {
    const summary = await call("load", { kind, file }, progress.update);
    state[kind] = summary;
    box.innerHTML = summaryHtml(kind === "recipients" ? "Recipients" : "Visitor links", summary);
    box.dataset.rows = summary.rows;
    box.dataset.rejected = summary.rejected;
    if (kind === "recipients") recipientsLoaded(summary);
  } catch (error) {
    state[kind] = null;
    box.classList.add("failed");
    box.innerHTML = `<div class="fr-head"><span class="fr-name">${esc(file.name)}</span></div><div class="error" data-testid="file-error"></div>`;
    showError($(".error", box), { file: file.name, ...error, message: error.message });
  } finally {
    progress.done();
    refresh();
  }
}

async function addAudience(files) {
  const box = $('[data-testid="file-audience"]');
  state.audience = [];
  for (const file of files) {
    const { format, columns } = await call("inspect", { file });
    state.audience.push({ file, format, columns });
  }
  box.hidden = false;
  box.innerHTML = `<div class="fr-head"><span class="fr-title">Audience</span></div>` +
    state.audience
      .map((a) => `<div class="aud-file"><span class="fr-name">${esc(a.file.name)}</span> <span class="tag">${esc(FORMATS[a.format] ?? "plain id list")}</span> <span class="muted">${bytes(a.file.size)}</span></div>`)
      .join("");
  renderAudienceOptions();
  refresh();
}

const FORMATS = { outbound: "Audience Manager outbound", aep: "Experience Platform export", onboarding: "onboarding file" };

function renderAudienceOptions() {
  const box = $('[data-testid="audience-options"]');
  box.innerHTML = state.audience
    .map((a, i) => {
      if (a.format === "aep") {
        const options = (pick) => a.columns.map((c) => `<option ${c === pick ? "selected" : ""}>${esc(c)}</option>`).join("");
        const identity = a.columns.find((c) => /sha256|ecid|id$/i.test(c)) ?? a.columns[0];
        const status = a.columns.find((c) => /status/i.test(c));
        return `<fieldset data-file="${i}"><legend>${esc(a.file.name)}</legend>
          <label>Identity column <select name="identity" data-testid="aep-identity">${options(identity)}</select></label>
          <label>Status column <select name="status" data-testid="aep-status"><option value="">none</option>${options(status)}</select></label>
          <label>Mode <select name="mode"><option value="incremental">incremental</option><option value="full">full</option></select></label>
          <label>Into list <input name="list" data-testid="aep-list" placeholder="segment-&lt;id&gt;"></label></fieldset>`;
      }
      if (!a.format) {
        return `<fieldset data-file="${i}"><legend>${esc(a.file.name)}</legend>
          <label>Segment id <input name="segment" data-testid="ids-segment" value="1"></label>
          <label>Into list <input name="list" placeholder="segment-&lt;id&gt;"></label></fieldset>`;
      }
      return "";
    })
    .join("");
}

function audienceSpecs() {
  const mappings = {};
  const files = state.audience.map((a, i) => {
    const box = $(`fieldset[data-file="${i}"]`);
    const value = (name) => $(`[name="${name}"]`, box)?.value.trim() || null;
    if (a.format === "aep") {
      const list = value("list");
      const segment = /_segment([^_]+)_/.exec(a.file.name)?.[1];
      if (list && segment) mappings[segment] = list;
      return { file: a.file, format: { format: "aep", columns: { identity: value("identity"), status: value("status") }, full: value("mode") === "full" } };
    }
    if (!a.format) {
      const segment = value("segment") ?? "1";
      if (value("list")) mappings[segment] = value("list");
      return { file: a.file, format: { format: "id-list", segment } };
    }
    return { file: a.file, format: { format: a.format } };
  });
  return { files, mappings };
}

// ---------------------------------------------------------------------------------------------
// Import preview

async function runImport() {
  const error = $('[data-testid="import-error"]');
  showError(error, null);
  const status = $('[data-testid="import-status"]');
  status.textContent = "matching…";
  const progress = progressFor("import");
  const started = performance.now();
  try {
    const { files, mappings } = audienceSpecs();
    const view = await call("import", { dataSource: dataSourceSpec(readDataSource()), files, mappings }, progress.update);
    state.imported = view;
    window.audlinkTimings = view.timings; // read by bench/browser_preview.mjs
    state.unmatchedOffset = 0;
    renderImport(view);
    status.textContent = `done in ${((performance.now() - started) / 1000).toFixed(2)} s`;
    updateExportMembers(view.lists);
    scheduleRule();
  } catch (e) {
    status.textContent = "";
    $('[data-testid="import-summary"]').hidden = true;
    showError(error, e);
  } finally {
    progress.done();
  }
}

const REASON_ORDER = ["invalid_format", "no_recipient", "ambiguous", "duplicate"];
function reasonColor(reason, i) {
  const k = REASON_ORDER.indexOf(reason);
  return COLORS.reasons[k >= 0 ? k : 4 + (i % 3)];
}

function renderImport(view) {
  const { report } = view;
  const t = report.totals;
  const segments = Object.values(report.segments);
  const summary = $('[data-testid="import-summary"]');
  summary.hidden = false;
  const rate = t.units ? t.matched / t.units : 0;
  $(".kpis", summary).innerHTML = [
    ["identifiers", fmt.format(t.units), "kpi-ids"],
    ["matched", fmt.format(t.matched), "kpi-matched"],
    ["unmatched", fmt.format(t.unmatched), "kpi-unmatched"],
    ["match rate", pct(rate), "kpi-rate"],
    ["segments", fmt.format(segments.length), "kpi-segments"],
    ["bad lines", fmt.format(t.bad_records), "kpi-bad"],
  ]
    .map(([label, value, id]) => `<div class="kpi" data-testid="${id}"><div class="kpi-value">${value}</div><div class="kpi-label">${label}</div></div>`)
    .join("");

  const byReason = {};
  for (const s of segments) for (const [r, n] of Object.entries(s.unmatched)) byReason[r] = (byReason[r] ?? 0) + n;
  const reasons = Object.keys(byReason).sort((a, b) => byReason[b] - byReason[a]);
  const slices = [{ label: "matched", value: t.matched, color: COLORS.matched }, ...reasons.map((r, i) => ({ label: r, value: byReason[r], color: reasonColor(r, i) }))];
  $(".donut", summary).innerHTML = donut(slices, pct(rate), "matched");

  const rows = segments
    .map((s) => {
      const unmatched = Object.values(s.unmatched).reduce((a, b) => a + b, 0);
      const parts = [{ value: s.matched, color: COLORS.matched, label: "matched" }, ...Object.entries(s.unmatched).map(([r, n], i) => ({ value: n, color: reasonColor(r, i), label: r }))];
      const reasonsText = Object.entries(s.unmatched)
        .filter(([, n]) => n)
        .map(([r, n]) => `<span class="tag" style="--c:${reasonColor(r, 0)}">${esc(r)} ${fmt.format(n)}</span>`)
        .join(" ");
      return `<tr data-testid="segment-row" data-segment="${esc(s.segment)}" data-list="${esc(s.list)}" data-ids="${s.ids}" data-matched="${s.matched}" data-unmatched="${unmatched}" data-recipients="${s.distinct_recipients}">
        <td class="seg">${esc(s.segment)}<div class="sub">→ ${esc(s.list)}</div></td><td class="num">${fmt.format(s.ids)}</td><td class="num">${fmt.format(s.matched)}</td><td class="num">${fmt.format(unmatched)}</td>
        <td class="rate">${rateBar(parts)} <span>${pct(s.match_rate)}</span></td><td class="reasons">${reasonsText || '<span class="muted">—</span>'}</td></tr>`;
    })
    .join("");
  $(".segments tbody", summary).innerHTML = rows;

  const select = $('[data-testid="unmatched-reason"]');
  select.innerHTML = `<option value="">all reasons (${fmt.format(view.unmatched_total)})</option>` + Object.entries(view.unmatched_by_reason).map(([r, n]) => `<option value="${esc(r)}">${esc(r)} (${fmt.format(n)})</option>`).join("");
  renderUnmatched();

  // The heat map shows the largest lists at most (a 50×50 grid is unreadable).
  $('[data-testid="overlap"]').innerHTML = heatmap({ lists: view.overlap.lists, matrix: view.overlap.counts, total: view.lists.filter((l) => l.members > 0).length }, 12);
}

async function renderUnmatched() {
  const reason = $('[data-testid="unmatched-reason"]').value;
  const page = await call("unmatched", { offset: state.unmatchedOffset, limit: PAGE, reason });
  $(".unmatched tbody").innerHTML =
    page.rows
      .map((u) => `<tr data-testid="unmatched-row"><td class="muted file" title="${esc(u.file)}">${esc(u.file)}</td><td class="num">${u.line}</td><td>${esc(u.segment)}</td><td class="mono">${esc(u.id)}</td><td><span class="tag" style="--c:${reasonColor(u.reason, 0)}">${esc(u.reason)}</span></td></tr>`)
      .join("") || `<tr><td colspan="5" class="muted">no unmatched identifiers</td></tr>`;
  const from = page.total ? state.unmatchedOffset + 1 : 0;
  const to = Math.min(state.unmatchedOffset + PAGE, page.total);
  $(".pager").innerHTML = `<button type="button" class="secondary small" data-page="-1" ${state.unmatchedOffset === 0 ? "disabled" : ""}>‹ prev</button>
    <span data-testid="unmatched-range">${fmt.format(from)}–${fmt.format(to)} of ${fmt.format(page.total)}</span>
    <button type="button" class="secondary small" data-page="1" ${to >= page.total ? "disabled" : ""}>next ›</button>`;
}

// ---------------------------------------------------------------------------------------------
// Rule editor

let ruleTimer = null;
let ruleSeq = 0;
function scheduleRule() {
  clearTimeout(ruleTimer);
  ruleTimer = setTimeout(runRule, 150);
}

async function runRule() {
  const input = $('[data-testid="rule-input"]');
  const errorBox = $('[data-testid="rule-error"]');
  const count = $('[data-testid="rule-count"]');
  const text = input.value;
  if (!state.recipients) return;
  if (!text.trim()) {
    errorBox.hidden = true;
    input.classList.remove("invalid");
    count.textContent = "–";
    $('[data-testid="rule-total"]').textContent = "type a rule to count recipients";
    document.body.dataset.ruleDone = text;
    return;
  }
  const seq = ++ruleSeq;
  try {
    const preview = await call("preview", {
      rule: text,
      now: $('[data-testid="rule-now"]').value,
      breakdown: $('[data-testid="rule-breakdown"]').value || null,
      sample: 8,
    });
    if (seq !== ruleSeq) return;
    errorBox.hidden = true;
    errorBox.textContent = "";
    input.classList.remove("invalid");
    $("#rule").classList.remove("stale");
    count.textContent = String(preview.count.selected);
    count.dataset.total = preview.count.total;
    $('[data-testid="rule-total"]').innerHTML = `of ${fmt.format(preview.count.total)} recipients · <b>${pct(preview.count.total ? preview.count.selected / preview.count.total : 0)}</b> <span class="muted">(${preview.millis.toFixed(1)} ms)</span>`;
    renderSample(preview.sample);
    renderBreakdown(preview.breakdown);
    document.body.dataset.ruleDone = text;
  } catch (e) {
    if (seq !== ruleSeq) return;
    input.classList.add("invalid");
    const span = e.span ? ` data-start="${e.span.start}" data-end="${e.span.end}"` : "";
    const where = e.span ? `at ${e.span.start === e.span.end ? `position ${e.span.start + 1}` : `positions ${e.span.start + 1}–${e.span.end}`}` : "";
    errorBox.innerHTML = `<div class="rule-error-head"${span}>${esc(where)}</div><pre>${esc(e.message)}</pre>`;
    delete errorBox.dataset.start;
    delete errorBox.dataset.end;
    if (e.span) {
      errorBox.dataset.start = e.span.start;
      errorBox.dataset.end = e.span.end;
    }
    errorBox.hidden = false;
    count.textContent = "–";
    $('[data-testid="rule-total"]').textContent = "fix the rule to see the count";
    $("#rule").classList.add("stale");
    document.body.dataset.ruleDone = text;
  }
}

function cell(value) {
  if (value === null) return '<span class="muted">null</span>';
  if (typeof value === "boolean") return value ? "✓" : "✗";
  return esc(value);
}

function renderSample(sample) {
  const table = $('[data-testid="rule-sample"]');
  $("thead", table).innerHTML = `<tr><th>id</th>${sample.columns.map((c) => `<th>${esc(c.name)}</th>`).join("")}</tr>`;
  $("tbody", table).innerHTML = sample.rows.map((r) => `<tr><td class="mono">${esc(r.id)}</td>${r.values.map((v) => `<td>${cell(v)}</td>`).join("")}</tr>`).join("") || `<tr><td class="muted">no recipient selected</td></tr>`;
}

function renderBreakdown(breakdown) {
  const box = $('[data-testid="rule-breakdown-chart"]');
  if (!breakdown) {
    box.innerHTML = '<p class="muted">choose a column</p>';
    return;
  }
  const items = breakdown.top.map((t) => ({ label: t.value === null ? "null" : String(t.value), value: t.count }));
  if (breakdown.null) items.push({ label: "(null)", value: breakdown.null, muted: true });
  if (breakdown.other) items.push({ label: `(${fmt.format(breakdown.other_values)} other values)`, value: breakdown.other, muted: true });
  box.innerHTML = hbars(items, breakdown.total);
}

function recipientsLoaded(summary) {
  const columns = summary.schema.columns.map(([c]) => c);
  $("#columns").innerHTML = columns.map((c) => `<option value="${esc(c)}">`).join("");
  const select = $('[data-testid="rule-breakdown"]');
  const preferred = columns.find((c) => c === "country") ?? columns[1] ?? "";
  select.innerHTML = `<option value="">none</option>` + columns.map((c) => `<option ${c === preferred ? "selected" : ""}>${esc(c)}</option>`).join("");
  const input = $('[data-testid="rule-input"]');
  if (!input.value) {
    // A first rule to start from, built from what the file has.
    const has = (c) => columns.includes(c);
    input.value = has("country") && has("age") ? 'country in ("NL", "BE") and age >= 30' : has("id") ? "id is not null" : "";
  }
  scheduleRule();
}

// ---------------------------------------------------------------------------------------------
// Export preview

function updateExportMembers(lists) {
  const select = $('[data-testid="export-members"]');
  const current = select.value;
  select.innerHTML = `<option value="rule">the rule above</option>` + lists.map((l) => `<option value="list:${esc(l.list)}">list ${esc(l.list)} (${fmt.format(l.members)})</option>`).join("");
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

let exported = null;
async function runExport() {
  const error = $('[data-testid="export-error"]');
  const status = $('[data-testid="export-status"]');
  const out = $('[data-testid="export-result"]');
  showError(error, null);
  const form = $('[data-testid="export-form"]');
  const value = (n) => form.elements[n].value;
  const membersValue = value("members");
  const now = $('[data-testid="rule-now"]').value;
  const members = membersValue === "rule" ? { rule: { text: $('[data-testid="rule-input"]').value, now } } : { list: membersValue.slice(5) };
  const limits = { gzip: form.elements.gzip.checked };
  if (value("max_lines")) limits.max_lines = Number(value("max_lines"));
  const spec = {
    data_source: dataSourceSpec(readDataSource()),
    members,
    trait_id: Number(value("trait_id")),
    mode: value("mode"),
    timestamp: Number(value("timestamp")),
    limits,
  };
  status.textContent = "rendering…";
  const progress = progressFor("export");
  try {
    exported = await call("export", { spec });
    renderExport(exported);
    status.textContent = `${fmt.format(exported.files.length)} file${exported.files.length === 1 ? "" : "s"}`;
    $('[data-testid="export-download"]').disabled = exported.files.length === 0;
  } catch (e) {
    exported = null;
    out.hidden = true;
    status.textContent = "";
    $('[data-testid="export-download"]').disabled = true;
    showError(error, e);
  } finally {
    progress.done();
  }
}

const decoder = new TextDecoder();
function firstLines(file, n) {
  if (file.name.endsWith(".gz")) return `(gzip, ${bytes(file.bytes.length)})`;
  const head = decoder.decode(file.bytes.subarray(0, 4096));
  return head.split("\n").slice(0, n).join("\n");
}

function renderExport(result) {
  const out = $('[data-testid="export-result"]');
  const r = result.report;
  const notExported = Object.entries(r.not_exported).filter(([, n]) => n);
  out.hidden = false;
  out.innerHTML = `<div class="kpis">
    ${[["members", r.members], ["exported recipients", r.exported_recipients], ["identifiers", r.identifiers], ["added", r.added], ["removed", r.removed], ["files", r.files]]
      .map(([label, n]) => `<div class="kpi" data-testid="export-${label.replace(/ /g, "-")}"><div class="kpi-value">${fmt.format(n)}</div><div class="kpi-label">${label}</div></div>`)
      .join("")}
  </div>
  <div class="two">
    <div><h3>Files</h3>${result.files
      .map((f, i) => `<div class="export-file" data-testid="export-file" data-name="${esc(f.name)}" data-lines="${f.lines}">
        <div class="ef-head"><span class="mono">${esc(f.name)}</span><span class="muted">${fmt.format(f.lines)} lines · ${bytes(f.bytes.length)}</span><button type="button" class="secondary small" data-download="${i}">download</button></div>
        <pre class="head">${esc(firstLines(f, 6))}</pre></div>`)
      .join("") || '<p class="muted">no file: nothing to send</p>'}</div>
    <div><h3>Not exported</h3>${notExported.length ? hbars(notExported.map(([reason, n]) => ({ label: reason, value: n })), r.members, "not-exported") : '<p class="muted">every member has an identifier</p>'}
      ${result.not_exported.length ? `<table class="small-table"><thead><tr><th>Recipient</th><th>Reason</th></tr></thead><tbody>${result.not_exported.slice(0, 8).map((n) => `<tr><td class="mono">${esc(n.recipient)}</td><td><span class="tag">${esc(n.reason)}</span></td></tr>`).join("")}</tbody></table>` : ""}</div>
  </div>`;
}

function download(file) {
  const url = URL.createObjectURL(new Blob([file.bytes], { type: "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = file.name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function refresh() {
  $('[data-testid="import-run"]').disabled = !(state.recipients && state.audience.length);
  $('[data-testid="export-run"]').disabled = !state.recipients;
}

function setupDrops() {
  for (const drop of $$(".drop")) {
    const input = $("input", drop);
    const kind = drop.dataset.kind;
    const take = (files) => {
      if (!files.length) return;
      if (kind === "audience") addAudience([...files]).catch((e) => showError($('[data-testid="import-error"]'), e));
      else loadTable(kind, files[0]);
    };
    input.addEventListener("change", () => take(input.files));
    drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      take(e.dataTransfer.files);
    });
  }
}

function setupDataSource() {
  const form = $('[data-testid="datasource-form"]');
  writeDataSource(form);
  const update = () => {
    const ds = readDataSource();
    applyKind(form, ds);
    const toml = toToml(ds);
    $('[data-testid="datasource-toml"]').textContent = toml;
    $('[data-testid="datasource-toml-download"]').href = `data:application/toml;charset=utf-8,${encodeURIComponent(toml)}`;
  };
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
  $('[data-action="copy-toml"]').addEventListener("click", () => navigator.clipboard?.writeText($('[data-testid="datasource-toml"]').textContent).catch(() => {}));
}

function setupServer() {
  if (!servedByApi()) return;
  const form = $('[data-testid="server-source"]');
  form.hidden = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = $('[data-testid="server-error"]');
    error.hidden = true;
    const button = $('[data-testid="server-load"]');
    button.disabled = true;
    try {
      const tables = await fetchTables($('[data-testid="server-token"]').value.trim());
      for (const [kind, file] of tables) await loadTable(kind, file);
    } catch (failure) {
      showError(error, failure);
    } finally {
      button.disabled = false;
    }
  });
}

function setup() {
  setupDrops();
  setupServer();
  setupDataSource();
  $('[data-testid="rule-now"]').value = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  $('[data-testid="export-timestamp"]').value = Math.floor(Date.now() / 1000);
  $('[data-testid="rule-input"]').addEventListener("input", () => {
    delete document.body.dataset.ruleDone;
    scheduleRule();
  });
  $('[data-testid="rule-now"]').addEventListener("input", scheduleRule);
  $('[data-testid="rule-breakdown"]').addEventListener("change", scheduleRule);
  $('[data-action="import"]').addEventListener("click", runImport);
  $('[data-action="export"]').addEventListener("click", runExport);
  $('[data-testid="export-download"]').addEventListener("click", () => exported?.files.forEach(download));
  $('[data-testid="export-result"]').addEventListener("click", (e) => {
    const i = e.target.dataset?.download;
    if (i !== undefined && exported) download(exported.files[Number(i)]);
  });
  $('[data-testid="unmatched-reason"]').addEventListener("change", () => {
    state.unmatchedOffset = 0;
    renderUnmatched();
  });
  $(".pager").addEventListener("click", (e) => {
    const step = Number(e.target.dataset?.page);
    if (!step) return;
    state.unmatchedOffset = Math.max(0, state.unmatchedOffset + step * PAGE);
    renderUnmatched();
  });
  refresh();
  document.body.dataset.ready = "true";
}

setup();
