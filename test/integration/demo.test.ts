import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { nodeUnavailableReason } from "../harness/node.ts";
import { repoRoot } from "../harness/paths.ts";

const run = promisify(execFile);

describe("the demo", () => {
  it("brings everything up, shows what the operator did, and stops cleanly with --once", async () => {
    const { stdout } = await run(process.execPath, [join(repoRoot, "scripts", "demo.ts"), "--once"], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      timeout: 300_000,
    });
    assert.match(
      stdout,
      /^shop\s+ecr-pull\s+123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com\s+default\s+\d{4}-/m,
    );
    assert.match(stdout, /^team-a\s+ecr-teams\s+\S+\s+builder, default\s/m);
    assert.match(stdout, /^team-legacy\s+-\s+\(not targeted\)/m);
    assert.match(stdout, /^\s+210987654321\.dkr\.ecr\.eu-west-1\.amazonaws\.com/m);
    assert.match(stdout, /^\s+123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com/m);
    assert.match(stdout, /^\s+public\.ecr\.aws/m);
    assert.match(stdout, /^teams\s+True\s+3\/3/m);
    assert.match(stdout, /^multi-registry\s+True\s+1\/1/m);
    const nodeProblem = nodeUnavailableReason();
    if (nodeProblem === undefined) {
      assert.match(stdout, /^ {2}pod\/test: ImagePullBackOff, the kubelet reports: .*(401|unauthorized)/im);
      assert.match(stdout, /^ {2}pod\/test2: pulled with the operator's Secret and Completed/m);
    } else {
      assert.ok(stdout.includes(`No real node here, so no Pod pulls an image in this demo: ${nodeProblem}`));
    }
    assert.match(stdout, /everything it started has stopped/);
  });
});
