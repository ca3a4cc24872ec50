import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const guard = path.join(import.meta.dirname, "exit-guard.ts");
const dir = await mkdtemp(path.join(tmpdir(), "exit-guard-"));
after(() => rm(dir, { recursive: true, force: true }));

/** Runs `files` (name → source) under the test runner with the guard, as `npm test` does. */
async function runFiles(
  files: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const paths = await Promise.all(
    Object.entries(files).map(async ([name, source]) => {
      const file = path.join(dir, name);
      await writeFile(file, source);
      return file;
    }),
  );
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ["--test", "--test-reporter=tap", "--import", guard, ...paths],
      { env: runnerEnv, timeout: 60_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

// A runner of its own: without the variable that marks this process as one of a runner's files.
const runnerEnv: NodeJS.ProcessEnv = { ...process.env, EXIT_GUARD_GRACE_MS: "300" };
delete runnerEnv.NODE_TEST_CONTEXT;

const manyTests = Array.from({ length: 200 }, (_, i) => `test("t${i}", () => {});`).join("\n");

test("a file that leaves a timer running fails, naming it, instead of hanging the run", async () => {
  const result = await runFiles({
    "leaks.test.mjs": `import { test } from "node:test";\ntest("starts a timer", () => { setInterval(() => {}, 1000); });`,
    "clean.test.mjs": `import { test } from "node:test";\n${manyTests}`,
  });
  assert.equal(result.code, 1);
  assert.match(result.stdout, /leaks\.test\.mjs: still open 0\.3 s after its tests: .*Timeout/);
  assert.match(result.stdout, /^# pass 201$/m);
  assert.match(result.stdout, /^# fail 1$/m);
});

test("files that close what they open pass with every test counted", async () => {
  const result = await runFiles({
    "a.test.mjs": `import { test } from "node:test";\n${manyTests}`,
    "b.test.mjs": `import { test } from "node:test";\nimport { createServer } from "node:net";\ntest("closes its server", async () => { const s = createServer().listen(0, "127.0.0.1"); await new Promise((r) => s.close(r)); });\n${manyTests}`,
  });
  assert.doesNotMatch(result.stdout, /still open/);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^# tests 401$/m);
  assert.match(result.stdout, /^# fail 0$/m);
});
