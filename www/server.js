// The "database" source of the page, when it is opened from `audlink serve`: the database's
// recipients and visitor links fetched from the server's API (GET /api/recipients.csv and
// /api/visitor-links.csv) with the `read` token the user types, and handed to the worker as
// files, exactly as if the user had dropped the CSVs. The token is kept in memory only (never
// in the URL or localStorage) and sent only to the server the page came from.

/** Whether the page was opened from a server (not from a file), so the API is there. */
export function servedByApi() {
  return location.protocol === "http:" || location.protocol === "https:";
}

/** The two tables as Files named after the database: [[kind, File], ...]. */
export async function fetchTables(token) {
  const tables = [
    ["recipients", "api/recipients.csv", "database-recipients.csv"],
    ["links", "api/visitor-links.csv", "database-visitors.csv"],
  ];
  const out = [];
  for (const [kind, path, name] of tables) {
    const response = await fetch(new URL(path, location.origin + "/"), {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (body?.error?.message) message = body.error.message;
      } catch {
        // not JSON: the status says enough
      }
      throw Object.assign(new Error(`${path}: ${message}`), { kind: "server" });
    }
    const blob = await response.blob();
    out.push([kind, new File([blob], name, { type: "text/csv" })]);
  }
  return out;
}
