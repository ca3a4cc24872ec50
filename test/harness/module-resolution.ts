// Which modules a piece of code loads: runs a script in a fresh Node process (where nothing else has
// loaded them yet) with a resolve hook that records every specifier, and returns what it printed.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const recordResolves = `
  import { registerHooks } from "node:module";
  const resolved = new Set();
  registerHooks({
    resolve: (specifier, context, next) => {
      resolved.add(specifier);
      return next(specifier, context);
    },
  });
`;

/**
 * Runs `body` as an ES module after the hook; it sees `resolved`, the Set of specifiers resolved so
 * far, and `process.argv.slice(1)` = `args`. Resolves with the JSON it writes to stdout.
 */
export async function runRecordingResolves(
  body: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--input-type=module", "--eval", `${recordResolves}\n${body}`, ...args],
    env === undefined ? {} : { env },
  );
  return JSON.parse(stdout) as unknown;
}
