// Loaded into every test process (`--import`): once a file's tests and hooks have all run, the
// process has a minute to exit by itself. If a server, socket, timer or child process is still
// holding it open then, it names what is open and exits with a failure, so that a leak fails its
// file instead of hanging the run. (`--test-force-exit` would end such files at once, but it can
// end them before their results reach the runner, which then counts fewer tests and no failure.)
import { after } from "node:test";

// A test of this guard sets a shorter grace.
const graceMs = Number(process.env.EXIT_GUARD_GRACE_MS ?? 60_000);

after(() => {
  const timer = setTimeout(() => {
    const open = process.getActiveResourcesInfo().join(", ");
    process.stderr.write(
      `${process.argv[1] ?? "a test file"}: still open ${graceMs / 1000} s after its tests: ${open}\n`,
    );
    process.exit(1);
  }, graceMs);
  timer.unref();
});
