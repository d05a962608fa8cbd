// The data source form: read and written as the flat object the CLI's `[[datasource]]` table
// holds, kept in the page address (`#ds=…`) and localStorage, rendered as that TOML, and turned
// into the core's `DataSource` (which names two keys differently: `key_column`,
// `default_country_code` for the file's `key`, `country_code`).

const FIELDS = ["name", "kind", "dpid", "integration_code", "key_column", "encoding", "profile", "default_country_code", "policy"];
const STORAGE = "audlink.datasource";

let form = null;

/** The form's values as plain strings (empty when blank). */
export function readDataSource() {
  const ds = {};
  for (const field of FIELDS) ds[field] = (form.elements[field]?.value ?? "").trim();
  return ds;
}

/** Fills the form from the address (`#ds=…`), else localStorage, and keeps both current. */
export function writeDataSource(target) {
  form = target;
  let saved = null;
  try {
    const hash = new URLSearchParams(location.hash.slice(1)).get("ds");
    saved = JSON.parse(hash ?? localStorage.getItem(STORAGE) ?? "null");
  } catch {
    saved = null;
  }
  if (saved && typeof saved === "object") {
    for (const field of FIELDS) if (typeof saved[field] === "string" && form.elements[field]) form.elements[field].value = saved[field];
  }
  const persist = () => {
    const text = JSON.stringify(readDataSource());
    history.replaceState(null, "", `#ds=${encodeURIComponent(text)}`);
    try {
      localStorage.setItem(STORAGE, text);
    } catch {
      // Storage may be off (private windows); the address still holds it.
    }
  };
  form.addEventListener("change", persist);
  form.addEventListener("input", persist);
}

/** Shows the fields that apply to the kind and encoding chosen. */
export function applyKind(target, ds) {
  for (const label of target.querySelectorAll("[data-for]")) {
    const needs = label.dataset.for.split(" ");
    let shown = ds.kind === "declared-id";
    if (needs.includes("hashed")) shown &&= ds.encoding !== "plain";
    if (needs.includes("phone")) shown &&= ds.encoding === "sha256-phone";
    label.hidden = !shown;
  }
}

/** The fields that apply, as the core's `DataSource`. */
export function dataSourceSpec(ds) {
  const spec = { name: ds.name, kind: ds.kind, dpid: Number(ds.dpid), policy: ds.policy };
  if (ds.integration_code) spec.integration_code = ds.integration_code;
  if (ds.kind === "declared-id") {
    spec.key_column = ds.key_column;
    spec.encoding = ds.encoding;
    if (ds.encoding !== "plain") spec.profile = ds.profile;
    if (ds.encoding === "sha256-phone" && ds.default_country_code) spec.default_country_code = Number(ds.default_country_code);
  }
  return spec;
}

const quote = (text) => JSON.stringify(text); // a TOML basic string is a JSON string for these

/** The `[[datasource]]` table `audlink.toml` holds (host/src/config.rs). */
export function toToml(ds) {
  const spec = dataSourceSpec(ds);
  const lines = ["[[datasource]]", `name = ${quote(spec.name)}`, `kind = ${quote(spec.kind)}`, `dpid = ${Number.isFinite(spec.dpid) ? spec.dpid : 0}`];
  if (spec.integration_code) lines.push(`integration_code = ${quote(spec.integration_code)}`);
  if (spec.kind === "declared-id") {
    lines.push(`key = ${quote(spec.key_column)}`, `encoding = ${quote(spec.encoding)}`);
    if (spec.profile) lines.push(`profile = ${quote(spec.profile)}`);
    if (spec.default_country_code) lines.push(`country_code = ${spec.default_country_code}`);
  }
  lines.push(`policy = ${quote(spec.policy)}`);
  return lines.join("\n") + "\n";
}
