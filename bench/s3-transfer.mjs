#!/usr/bin/env node
// Benchmark: object-store transfers (issue 15): troupe's DataPlane against `aws s3 cp`.
//   npm run build && node bench/s3-transfer.mjs [--rounds 5] [--mib 1024] [--files 1000] [--cases one,tree]
//   (or npm run bench:s3)
// Against the running S3 test server (source /var/tmp/troupe-s3/env, else scripts/s3/up.sh starts it), in a
// bucket of its own (made here, emptied and removed at the end): 1 GiB as one object, and 1,000 files of 1 MiB
// (1,000 MiB in all) as a tree; each uploaded and downloaded by troupe (dist/'s objectStoreDataPlane, as
// `troupe run` moves `url:` data, in a fresh Node process per transfer) and by `aws s3 cp` (awscli from
// scripts/awscli.sh; `--recursive` for the tree), the tools alternating which goes first, round after round.
// Each time is the whole process, start to exit, for both. What came back is checked byte for byte (SHA-256
// of every file against the source's). Reported: the median throughput of each tool in each case, and the
// ratio troupe/aws of the medians (target: at least 0.9x).
import { execFile, execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

// --- child: one transfer through troupe's DataPlane, as `troupe run` makes it --------------------------------
if (process.argv[2] === "--child") {
  const [, , , direction, url, dir] = process.argv;
  const { dataCredentialFrom, objectStoreDataPlane } = await import(new URL("../dist/data/index.js", import.meta.url).href);
  const e = process.env;
  const bucket = new URL(url).host;
  const credential = dataCredentialFrom("bench", {
    endpoint: `s3://${bucket}`,
    region: e.TROUPE_S3_REGION,
    access_key_id: e.TROUPE_S3_ADMIN_ACCESS_KEY_ID,
    access_key: e.TROUPE_S3_ADMIN_SECRET_ACCESS_KEY,
    override_url: e.TROUPE_S3_ENDPOINT,
  });
  const plane = objectStoreDataPlane({ credentials: () => [credential] });
  const report = await plane[direction]([{ url, dir }], new AbortController().signal);
  process.stdout.write(JSON.stringify(report));
  process.exit(0);
}

// --- settings ------------------------------------------------------------------------------------------------
function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1];
}
const rounds = Number(option("rounds", "5"));
const bigMib = Number(option("mib", "1024"));
const treeFiles = Number(option("files", "1000"));
const cases = option("cases", "one,tree").split(",");
if (!(rounds >= 1 && bigMib >= 1 && treeFiles >= 1) || cases.some((c) => c !== "one" && c !== "tree")) {
  console.error("usage: node bench/s3-transfer.mjs [--rounds N>=1] [--mib MiB] [--files N] [--cases one,tree]");
  process.exit(2);
}
if (!existsSync(new URL("../dist/data/index.js", import.meta.url))) {
  console.error("s3-transfer: run `npm run build` first (the benchmark uses dist/, as `troupe run` does)");
  process.exit(2);
}

/** The S3 server's settings: from the environment, the running server's env file, or up.sh (which starts it). */
function s3Environment() {
  if (process.env.TROUPE_S3_ENDPOINT && process.env.TROUPE_S3_ADMIN_ACCESS_KEY_ID) return process.env;
  const file = `${process.env.TROUPE_S3_DIR ?? "/var/tmp/troupe-s3"}/env`;
  const text = existsSync(file)
    ? readFileSync(file, "utf8")
    : execFileSync("bash", [join(root, "scripts/s3/up.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const values = {};
  for (const m of text.matchAll(/^export (\w+)=(.*)$/gm)) values[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
  return { ...process.env, ...values };
}

const env = s3Environment();
const aws = execFileSync("bash", [join(root, "scripts/awscli.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
const work = `/var/tmp/troupe-bench-s3-${process.pid}`;
const bucket = `troupe-bench-${process.pid}`;
mkdirSync(work, { recursive: true });
// awscli configured only from here: its endpoint and keys from the environment, path-style addressing and no
// other profile's settings from a file of its own. Checksums as troupe sends them to an S3-compatible endpoint
// (only where an operation requires one), so that both do the same work: awscli's default adds a CRC32 to
// every upload and checks it on every download (pass --aws-default-checksums to keep that).
const awsConfig = join(work, "aws-config");
const sameChecksums = !process.argv.includes("--aws-default-checksums");
writeFileSync(
  awsConfig,
  [
    "[default]",
    `region = ${env.TROUPE_S3_REGION ?? "us-east-1"}`,
    ...(sameChecksums ? ["request_checksum_calculation = when_required", "response_checksum_validation = when_required"] : []),
    "s3 =",
    "  addressing_style = path",
    "",
  ].join("\n"),
);
const awsEnv = {
  PATH: process.env.PATH,
  HOME: work,
  AWS_CONFIG_FILE: awsConfig,
  AWS_SHARED_CREDENTIALS_FILE: join(work, "no-credentials"),
  AWS_ACCESS_KEY_ID: env.TROUPE_S3_ADMIN_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: env.TROUPE_S3_ADMIN_SECRET_ACCESS_KEY,
  AWS_ENDPOINT_URL: env.TROUPE_S3_ENDPOINT,
};
const troupeEnv = { ...process.env, ...env };
const awsCli = (...args) => run(aws, ["--only-show-errors", "--no-progress", ...args], { env: awsEnv, maxBuffer: 1 << 24 });
const awsCall = (...args) => run(aws, args, { env: awsEnv, maxBuffer: 1 << 24 });

// --- the data, and what checks it -----------------------------------------------------------------------------
const MIB = 1024 * 1024;
function randomFile(file, mib) {
  const chunk = Buffer.allocUnsafe(Math.min(mib, 8) * MIB);
  writeFileSync(file, ""); // a new, empty file
  for (let left = mib; left > 0; left -= chunk.length / MIB) {
    randomFillSync(chunk);
    writeFileSync(file, chunk.subarray(0, Math.min(left, chunk.length / MIB) * MIB), { flag: "a" });
  }
}
async function sha256(file) {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(file, { highWaterMark: 4 * MIB })) hash.update(piece);
  return hash.digest("hex");
}
async function filesIn(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)))
    .sort();
}
/** Every file under `dir` with its SHA-256, as "path sha" lines (the directory's fingerprint). */
async function fingerprint(dir) {
  const lines = [];
  for (const file of await filesIn(dir)) lines.push(`${file} ${await sha256(join(dir, file))}`);
  return lines.join("\n");
}

const source = { one: join(work, "src-one"), tree: join(work, "src-tree") };
console.error(`s3-transfer: writing the data under ${work} (random bytes)`);
if (cases.includes("one")) {
  mkdirSync(source.one);
  randomFile(join(source.one, "big.bin"), bigMib);
}
if (cases.includes("tree")) {
  // Two levels, as an output directory often is: 10 directories of treeFiles/10 files.
  for (let i = 0; i < treeFiles; i++) {
    const dir = join(source.tree, `d${String(i % 10).padStart(2, "0")}`);
    mkdirSync(dir, { recursive: true });
    randomFile(join(dir, `f${String(i).padStart(4, "0")}.bin`), 1);
  }
}
const expected = {};
for (const c of cases) expected[c] = await fingerprint(source[c]);
const bytesOf = { one: bigMib * MIB, tree: treeFiles * MIB };

// --- one transfer of each kind, by each tool ---------------------------------------------------------------
/** The URL a tool's copy of a case goes to in round `r`. */
const urlOf = (tool, c, r) => `s3://${bucket}/r${r}/${tool}/${c}/`;
const tools = {
  async troupe(direction, c, r, dir) {
    const url = direction === "download" && c === "one" ? `${urlOf("troupe", c, r)}big.bin` : urlOf("troupe", c, r);
    const { stdout } = await run(process.execPath, [new URL(import.meta.url).pathname, "--child", direction, url, dir], {
      env: troupeEnv,
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout);
  },
  async aws(direction, c, r, dir) {
    const url = urlOf("aws", c, r);
    if (c === "one") {
      if (direction === "upload") await awsCli("s3", "cp", join(dir, "big.bin"), `${url}big.bin`);
      else await awsCli("s3", "cp", `${url}big.bin`, join(dir, "big.bin"));
    } else if (direction === "upload") await awsCli("s3", "cp", "--recursive", dir, url);
    else await awsCli("s3", "cp", "--recursive", url, dir);
  },
};

async function timed(job) {
  const t0 = performance.now();
  await job();
  return (performance.now() - t0) / 1000;
}

// --- the runs ----------------------------------------------------------------------------------------------
const seconds = {};
for (const c of cases) seconds[c] = { troupe: { upload: [], download: [] }, aws: { upload: [], download: [] } };
const loads = [loadavg()[0]];
try {
  await awsCall("s3api", "create-bucket", "--bucket", bucket);
  // Warm-up: the first write into a new bucket waits for its collection; Python and Node read their code once.
  const warm = join(work, "warm");
  mkdirSync(warm);
  writeFileSync(join(warm, "w.bin"), "warm");
  await tools.troupe("upload", "warm", 0, warm);
  await awsCli("s3", "cp", join(warm, "w.bin"), `s3://${bucket}/warm/w.bin`);
  await awsCall("s3", "rm", "--quiet", "--recursive", `s3://${bucket}/`);
  rmSync(warm, { recursive: true });

  for (let r = 1; r <= rounds; r++) {
    const order = r % 2 === 1 ? ["troupe", "aws"] : ["aws", "troupe"];
    for (const c of cases) {
      for (const tool of order) seconds[c][tool].upload.push(await timed(() => tools[tool]("upload", c, r, source[c])));
      for (const tool of order) {
        const into = join(work, `got-${tool}-${c}`);
        mkdirSync(into);
        seconds[c][tool].download.push(await timed(() => tools[tool]("download", c, r, into)));
        const got = await fingerprint(into);
        if (got !== expected[c]) throw new Error(`${tool} ${c} round ${r}: what came back differs from what was sent`);
        rmSync(into, { recursive: true });
      }
      await awsCall("s3", "rm", "--quiet", "--recursive", `s3://${bucket}/r${r}/`);
    }
    loads.push(loadavg()[0]);
    console.error(`s3-transfer: round ${r} of ${rounds} done (load ${loadavg()[0].toFixed(2)})`);
  }
} finally {
  await awsCall("s3", "rb", "--force", `s3://${bucket}`).catch((error) =>
    console.error(`s3-transfer: bucket ${bucket} left: ${error.message}`),
  );
  rmSync(work, { recursive: true, force: true });
}

// --- the report --------------------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mbps = (c, s) => bytesOf[c] / 1e6 / s;
const { version } = JSON.parse(readFileSync(join(root, "node_modules/@aws-sdk/client-s3/package.json"), "utf8"));
const awsVersion = (await awsCall("--version")).stdout.trim() || "";
console.log(`troupe: @aws-sdk/client-s3 ${version} on Node ${process.versions.node}; aws: ${awsVersion}`);
console.log(`${rounds} rounds, order alternating; awscli checksums: ${sameChecksums ? "when required (as troupe)" : "its defaults"}`);
console.log(`load average (1 min) over the rounds: ${loads.map((l) => l.toFixed(2)).join(" ")}`);
console.log("case                          troupe MB/s   aws MB/s  troupe/aws   troupe s (each round)         aws s (each round)");
const label = { one: `one object, ${bigMib} MiB`, tree: `${treeFiles} files of 1 MiB` };
for (const c of cases)
  for (const direction of ["upload", "download"]) {
    const t = seconds[c].troupe[direction];
    const a = seconds[c].aws[direction];
    const list = (xs) => xs.map((x) => x.toFixed(2)).join(" ");
    console.log(
      `${`${label[c]} ${direction}`.padEnd(29)} ${mbps(c, median(t)).toFixed(0).padStart(11)} ${mbps(c, median(a)).toFixed(0).padStart(10)} ${(median(a) / median(t)).toFixed(2).padStart(10)}x   ${list(t).padEnd(29)} ${list(a)}`,
    );
  }
