// The browser preview benchmark (not a test; `make bench-browser`): in headless Chromium, the
// time from file bytes to the rendered import preview for N recipients + their visitor links +
// the generated Audience Manager outbound file, and the time to re-evaluate a rule on N
// recipients. Data from `audlink generate` (seeded), served by `audlink serve`.
//
// Usage: node bench/browser_preview.mjs <audlink binary> [N=1000000] [dir=target/bench-browser]

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../tests/browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [audlink, n = "1000000", dir = "target/bench-browser"] = process.argv.slice(2);
if (!audlink) {
  console.error("usage: node bench/browser_preview.mjs <audlink binary> [N] [dir]");
  process.exit(2);
}
const data = join(dir, `data-${n}`);
const outbound = "S3_1_iter_1767225600000.sync";
if (!existsSync(join(data, outbound))) {
  execFileSync(audlink, ["-q", "generate", "--out", data, "--recipients", n, "--seed", "1"], { stdio: "inherit" });
}
const lines = (path) => {
  const bytes = readFileSync(path);
  let count = 0;
  for (let at = bytes.indexOf(10); at >= 0; at = bytes.indexOf(10, at + 1)) count++;
  return count;
};
const files = { recipients: join(data, "recipients.csv"), links: join(data, "visitors.csv"), audience: join(data, outbound) };
for (const [kind, file] of Object.entries(files)) {
  console.log(`${kind}: ${file} — ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB, ${lines(file)} lines`);
}

const root = new URL("../www", import.meta.url).pathname;
const server = spawn(audlink, ["serve", "--addr", "127.0.0.1:0", "--root", root], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve) => createInterface({ input: server.stdout }).once("line", resolve));

const profile = mkdtempSync(join(tmpdir(), "audlink-bench-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.AUDLINK_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1360, height: 900 },
});
const tid = (id) => `[data-testid="${id}"]`;
try {
  const runs = [];
  for (let run = 0; run < Number(process.env.RUNS ?? 3); run++) {
    const page = await context.newPage();
    page.setDefaultTimeout(300_000);
    page.on("pageerror", (e) => console.error(`uncaught: ${e.message}`));
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]');
    const t0 = performance.now();
    await page.setInputFiles(tid("input-recipients"), files.recipients);
    await page.locator(`${tid("file-recipients")} ${tid("rows")}`).waitFor();
    const t1 = performance.now();
    await page.setInputFiles(tid("input-links"), files.links);
    await page.locator(`${tid("file-links")} ${tid("rows")}`).waitFor();
    const t2 = performance.now();
    await page.setInputFiles(tid("input-audience"), files.audience);
    await page.locator(`${tid("file-audience")} .aud-file`).waitFor();
    await page.click(tid("import-run"));
    await page.locator(`${tid("import-summary")} ${tid("segment-row")}`).first().waitFor();
    const t3 = performance.now();
    const worker = await page.evaluate(() => window.audlinkTimings ?? null);
    // Rule re-evaluation: the worker's time for previewRule (count + sample + breakdown) and
    // the page's round trip from the edit to the rendered count, less the 150 ms debounce.
    const rules = ['country in ("NL", "BE") and age >= 30', 'age >= 40 and not opted_out', 'country = "DE" or age < 25', 'country in ("NL", "BE") and age >= 31'];
    const ruleTimes = [];
    for (const rule of rules) {
      const times = await page.evaluate(async (rule) => {
        const input = document.querySelector('[data-testid="rule-input"]');
        const started = performance.now();
        input.value = rule;
        input.dispatchEvent(new Event("input"));
        while (document.body.dataset.ruleDone !== rule) await new Promise((r) => setTimeout(r, 1));
        const total = document.querySelector('[data-testid="rule-total"]').textContent;
        return { roundTrip: performance.now() - started - 150, core: Number(/\(([\d.]+) ms\)/.exec(total)[1]) };
      }, rule);
      ruleTimes.push(times);
    }
    runs.push({ recipients: t1 - t0, links: t2 - t1, import: t3 - t2, total: t3 - t0, ruleTimes, worker });
    await page.close();
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ms = (x) => `${Math.round(x)} ms`;
  for (const [i, r] of runs.entries()) {
    console.log(`run ${i + 1}: recipients ${ms(r.recipients)}, links ${ms(r.links)}, audience + import + render ${ms(r.import)}; total ${ms(r.total)} (in the worker: ${JSON.stringify(r.worker)}); rules (core / round trip) ${r.ruleTimes.map((t) => `${t.core.toFixed(1)}/${t.roundTrip.toFixed(1)}`).join(", ")} ms`);
  }
  const rule = runs.flatMap((r) => r.ruleTimes.slice(1));
  console.log(`median: file bytes → rendered import preview ${ms(median(runs.map((r) => r.total)))} (recipients ${ms(median(runs.map((r) => r.recipients)))}, links ${ms(median(runs.map((r) => r.links)))}, import ${ms(median(runs.map((r) => r.import)))}); rule re-evaluation ${median(rule.map((t) => t.core)).toFixed(1)} ms in the core, ${median(rule.map((t) => t.roundTrip)).toFixed(1)} ms edit → count shown (debounce excluded)`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  server.kill();
}
