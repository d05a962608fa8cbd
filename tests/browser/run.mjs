// Drives the preview page (www/, served by `audlink serve`) in Debian's headless Chromium with
// Playwright, for one scenario, and prints one JSON object of what the page showed. The Rust
// tests in tests/it/browser.rs start the server, run the CLI on the same files, run this script
// and compare; this script only observes and never decides what is right — except that any
// console error, uncaught exception or failed request makes it exit non-zero.
//
// Usage: node tests/browser/run.mjs <scenario> <config.json>
//   config: {url, out (a folder for downloads and screenshots), files: {...}, ...scenario fields}
// Scenarios: import, rule, export, drop, bad-files, database.

import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [scenario, configPath] = process.argv.slice(2);
if (!scenario || !configPath) {
  console.error("usage: node tests/browser/run.mjs <scenario> <config.json>");
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, "utf8"));
mkdirSync(config.out, { recursive: true });

const CHROMIUM = process.env.AUDLINK_CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

// ---------------------------------------------------------------------------------------------

const tid = (id) => `[data-testid="${id}"]`;
/** Screenshots of one section: the sticky bar would cover part of it, so it scrolls away. */
const SHOT_STYLE = ".top, .progress { position: static !important; }";
async function shot(page, selector, path) {
  await page.locator(selector).screenshot({ path, style: SHOT_STYLE, animations: "disabled" });
}

/** Sets the data source form's fields and lets the page see the change. */
async function setDataSource(page, fields) {
  // The kind first: it decides which of the other fields are shown.
  const entries = Object.entries(fields ?? {}).sort(([a], [b]) => (b === "kind") - (a === "kind"));
  for (const [name, value] of entries) {
    const input = page.locator(`${tid("datasource-form")} [name="${name}"]`);
    if ((await input.evaluate((e) => e.tagName)) === "SELECT") await input.selectOption(String(value));
    else await input.fill(String(value));
  }
}

/** Loads recipients and links through the file inputs and waits for their summaries. */
async function loadTables(page, files) {
  const summaries = {};
  for (const kind of ["recipients", "links"]) {
    if (!files[kind]) continue;
    await page.setInputFiles(tid(`input-${kind}`), files[kind]);
    const box = page.locator(tid(`file-${kind}`));
    await box.locator(`${tid("rows")}, ${tid("file-error")}`).first().waitFor();
    summaries[kind] = await box.evaluate((e) => ({
      rows: e.dataset.rows === undefined ? null : Number(e.dataset.rows),
      rejected: e.dataset.rejected === undefined ? null : Number(e.dataset.rejected),
      text: e.innerText,
    }));
  }
  return summaries;
}

/** Loads the audience files, sets per-file options, runs the import preview, reads the rows. */
async function importPreview(page, config) {
  await page.setInputFiles(tid("input-audience"), config.files.audience);
  await page.locator(`${tid("file-audience")} .aud-file`).first().waitFor();
  for (const [testid, value] of Object.entries(config.audience_options ?? {})) {
    const input = page.locator(tid(testid));
    if ((await input.evaluate((e) => e.tagName)) === "SELECT") await input.selectOption(String(value));
    else await input.fill(String(value));
  }
  await page.click(tid("import-run"));
  await page.locator(`${tid("import-summary")} ${tid("segment-row")}, ${tid("import-error")}:not([hidden])`).first().waitFor();
  if (await page.locator(`${tid("import-error")}:not([hidden])`).count()) {
    throw new Error(`the import preview failed: ${await page.innerText(tid("import-error"))}`);
  }
  return page.$$eval(`${tid("import-summary")} ${tid("segment-row")}`, (rows) =>
    rows.map((r) => ({
      segment: r.dataset.segment,
      list: r.dataset.list,
      ids: Number(r.dataset.ids),
      matched: Number(r.dataset.matched),
      unmatched: Number(r.dataset.unmatched),
      recipients: Number(r.dataset.recipients),
    })),
  );
}

/** Types `text` into the rule editor (replacing it) and waits for a count or an error. */
async function typeRule(page, text) {
  const input = page.locator(tid("rule-input"));
  await input.fill("");
  await page.waitForFunction(() => document.querySelector('[data-testid="rule-count"]').textContent === "–");
  await input.pressSequentially(text, { delay: 5 });
  // The count or error for exactly this text: the page marks what it last evaluated.
  await page.waitForFunction(
    (t) => document.body.dataset.ruleDone === t,
    text,
  );
  return page.evaluate(() => {
    const error = document.querySelector('[data-testid="rule-error"]');
    return {
      count: document.querySelector('[data-testid="rule-count"]').textContent,
      error: error.hidden ? null : { text: error.innerText, start: error.dataset.start ?? null, end: error.dataset.end ?? null },
    };
  });
}

const SCENARIOS = {
  async import(page, config) {
    await setDataSource(page, config.datasource);
    const loads = await loadTables(page, config.files);
    const rows = await importPreview(page, config);
    const kpis = await page.$$eval(`${tid("import-summary")} .kpi`, (ks) => Object.fromEntries(ks.map((k) => [k.dataset.testid, k.querySelector(".kpi-value").textContent])));
    const unmatchedRows = await page.$$eval(tid("unmatched-row"), (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
    const unmatchedRange = await page.textContent(tid("unmatched-range"));
    if (config.screenshot) await shot(page, "#import", join(config.out, config.screenshot));
    let nextPage = null;
    if (!(await page.locator('.pager [data-page="1"]').isDisabled())) {
      await page.click('.pager [data-page="1"]');
      await page.waitForFunction((r) => document.querySelector('[data-testid="unmatched-range"]').textContent !== r, unmatchedRange);
      nextPage = {
        range: await page.textContent(tid("unmatched-range")),
        rows: await page.$$eval(tid("unmatched-row"), (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent))),
      };
    }
    const overlap = await page.$$eval(`${tid("overlap")} rect[data-both]`, (cells) => cells.map((c) => ({ a: c.dataset.a, b: c.dataset.b, both: Number(c.dataset.both) })));
    const toml = await page.textContent(tid("datasource-toml"));
    if (config.full_screenshot) {
      await page.screenshot({ path: join(config.out, config.full_screenshot), fullPage: true, style: SHOT_STYLE });
    }
    return { loads, rows, kpis, unmatchedRows, unmatchedRange, nextPage, overlap, toml };
  },

  async rule(page, config) {
    await loadTables(page, config.files);
    const outcomes = [];
    for (const text of config.rules) outcomes.push({ rule: text, ...(await typeRule(page, text)) });
    if (config.screenshot_rule) {
      await typeRule(page, config.screenshot_rule);
      await shot(page, "#rule", join(config.out, config.screenshot));
    }
    if (config.screenshot_error) {
      await typeRule(page, config.screenshot_error);
      await shot(page, "#rule", join(config.out, config.screenshot_error_file));
    }
    return { loads: {}, outcomes };
  },

  async export(page, config) {
    await setDataSource(page, config.datasource);
    await loadTables(page, config.files);
    if (config.files.audience) await importPreview(page, config);
    if (config.rule) await typeRule(page, config.rule);
    await page.fill(tid("rule-now"), config.now);
    await page.selectOption(tid("export-members"), config.members);
    await page.fill(tid("export-trait"), String(config.trait_id));
    await page.selectOption(tid("export-mode"), config.mode);
    await page.fill(tid("export-timestamp"), String(config.timestamp));
    await page.click(tid("export-run"));
    await page.locator(`${tid("export-result")}:not([hidden]), ${tid("export-error")}:not([hidden])`).first().waitFor();
    if (await page.locator(`${tid("export-error")}:not([hidden])`).count()) {
      throw new Error(`the export preview failed: ${await page.innerText(tid("export-error"))}`);
    }
    const files = await page.$$eval(tid("export-file"), (fs) => fs.map((f) => ({ name: f.dataset.name, lines: Number(f.dataset.lines) })));
    const notExported = await page.$$eval(`${tid("export-result")} [data-testid="not-exported"] .hbar`, (bs) => Object.fromEntries(bs.map((b) => [b.dataset.label, Number(b.dataset.value)])));
    const downloads = [];
    const done = new Promise((resolve) => {
      page.on("download", async (download) => {
        const path = join(config.out, download.suggestedFilename());
        await download.saveAs(path);
        downloads.push(download.suggestedFilename());
        if (downloads.length === files.length) resolve();
      });
    });
    await page.click(tid("export-download"));
    await done;
    if (config.screenshot) await shot(page, "#export", join(config.out, config.screenshot));
    return { files, notExported, downloads: downloads.sort() };
  },

  async database(page, config) {
    // The "database" source: the token typed, recipients and links fetched from the server.
    await page.fill(tid("server-token"), config.token);
    await page.click(tid("server-load"));
    const loads = {};
    for (const kind of ["recipients", "links"]) {
      const box = page.locator(tid(`file-${kind}`));
      await box.locator(tid("rows")).waitFor();
      loads[kind] = await box.evaluate((e) => ({ rows: Number(e.dataset.rows), rejected: Number(e.dataset.rejected), name: e.querySelector(".fr-name").textContent }));
    }
    const outcomes = [];
    for (const text of config.rules) outcomes.push({ rule: text, ...(await typeRule(page, text)) });
    if (config.screenshot) await shot(page, "#files", join(config.out, config.screenshot));
    return { loads, outcomes };
  },

  async drop(page, config) {
    // Files dropped on the boxes (a DataTransfer built in the page, as a drag from the desktop).
    const summaries = {};
    for (const kind of ["recipients", "links"]) {
      const text = readFileSync(config.files[kind], "utf8");
      const name = config.files[kind].split("/").pop();
      const dataTransfer = await page.evaluateHandle(({ text, name }) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([text], name, { type: "text/csv" }));
        return transfer;
      }, { text, name });
      await page.dispatchEvent(`.drop[data-kind="${kind}"]`, "dragover", { dataTransfer });
      await page.dispatchEvent(`.drop[data-kind="${kind}"]`, "drop", { dataTransfer });
      const box = page.locator(tid(`file-${kind}`));
      await box.locator(tid("rows")).waitFor();
      summaries[kind] = await box.evaluate((e) => ({ rows: Number(e.dataset.rows), rejected: Number(e.dataset.rejected), name: e.querySelector(".fr-name").textContent }));
    }
    return { loads: summaries };
  },

  async "bad-files"(page, config) {
    const loads = await loadTables(page, config.files);
    const error = await page.locator(`${tid("file-recipients")} ${tid("file-error")}`).count()
      ? await page.innerText(`${tid("file-recipients")} ${tid("file-error")}`)
      : null;
    return { loads, error };
  },
};

await main();

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "audlink-chromium-"));
  const problems = [];
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      acceptDownloads: true,
      viewport: { width: 1360, height: 900 },
      deviceScaleFactor: 1,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(config.timeout_ms ?? 60_000);
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`uncaught exception: ${error.message}`));
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
    });
    await page.goto(config.url);
    await page.waitForSelector('body[data-ready="true"]');
    const result = await SCENARIOS[scenario](page, config);
    await page.waitForTimeout(50); // lets late console messages arrive before judging
    result.problems = problems;
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exitCode = problems.length ? 1 : 0;
    if (problems.length) console.error(problems.join("\n"));
  } catch (error) {
    console.error(`scenario ${scenario} failed: ${error.stack ?? error}`);
    if (problems.length) console.error(problems.join("\n"));
    process.exitCode = 1;
  } finally {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
