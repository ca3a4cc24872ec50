import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { parseCommandLine, type CommandLine } from "./command-line.ts";
import { flags, type FlagName, type FlagSpec } from "./config.ts";

const flagSpecs = Object.entries(flags) as [FlagName, FlagSpec][];

function helpText(commandLine: CommandLine): string {
  assert.equal(commandLine.kind, "help", JSON.stringify(commandLine));
  return commandLine.text;
}

function errorText(commandLine: CommandLine): string {
  assert.equal(commandLine.kind, "usage-error", JSON.stringify(commandLine));
  return commandLine.text;
}

describe("parseCommandLine", () => {
  it("reads a flag's value from the next argument and from after '='", () => {
    assert.deepEqual(parseCommandLine(["run", "--workers", "8", "--region=eu-west-1"]), {
      kind: "run",
      flags: { workers: "8", region: "eu-west-1" },
    });
    assert.deepEqual(parseCommandLine(["once", "--output=json", "--kubeconfig", "/tmp/kc"]), {
      kind: "once",
      flags: { output: "json", kubeconfig: "/tmp/kc" },
    });
  });

  it("accepts every flag of the configuration table on run and once", () => {
    for (const command of ["run", "once"] as const) {
      for (const [key, spec] of flagSpecs) {
        const name = spec.flag.split(" ")[0] ?? "";
        assert.deepEqual(parseCommandLine([command, `${name}=value-of-${key}`]), {
          kind: command,
          flags: { [key]: `value-of-${key}` },
        });
      }
    }
  });

  it("reads a bare --dry-run or --leader-elect as true, and takes a following word as its value", () => {
    assert.deepEqual(parseCommandLine(["once", "--dry-run"]), { kind: "once", flags: { dryRun: "true" } });
    assert.deepEqual(parseCommandLine(["once", "--dry-run", "--workers", "2"]), {
      kind: "once",
      flags: { dryRun: "true", workers: "2" },
    });
    assert.deepEqual(parseCommandLine(["run", "--leader-elect", "false", "--dry-run=no"]), {
      kind: "run",
      flags: { leaderElect: "false", dryRun: "no" },
    });
  });

  it("passes values through for the configuration to validate: empty, dash-led, repeated (last wins)", () => {
    assert.deepEqual(parseCommandLine(["once", "--workers="]), { kind: "once", flags: { workers: "" } });
    assert.deepEqual(parseCommandLine(["once", "--workers", "-1"]), {
      kind: "once",
      flags: { workers: "-1" },
    });
    assert.deepEqual(parseCommandLine(["run", "--workers", "1", "--workers", "0"]), {
      kind: "run",
      flags: { workers: "0" },
    });
  });

  it("names an unknown flag, in either form and before or after the command", () => {
    assert.equal(
      errorText(parseCommandLine(["run", "--nope"])).split("\n")[0],
      "error: unknown option '--nope'",
    );
    assert.equal(
      errorText(parseCommandLine(["once", "--workers", "2", "--nope=1"])).split("\n")[0],
      "error: unknown option '--nope'",
    );
    assert.equal(errorText(parseCommandLine(["run", "-x"])).split("\n")[0], "error: unknown option '-x'");
    assert.equal(
      errorText(parseCommandLine(["--workers", "2", "run"])).split("\n")[0],
      "error: unknown option '--workers'",
    );
    assert.equal(
      errorText(parseCommandLine(["version", "--workers", "2"])).split("\n")[0],
      "error: unknown option '--workers'",
    );
  });

  it("points a usage error at the help of the command it was made in", () => {
    assert.equal(
      errorText(parseCommandLine(["once", "--nope"])),
      "error: unknown option '--nope'\nSee 'ecr-creds-refresher once --help'.\n",
    );
    assert.equal(
      errorText(parseCommandLine(["--nope"])),
      "error: unknown option '--nope'\nSee 'ecr-creds-refresher --help'.\n",
    );
  });

  it("names a flag whose value is missing", () => {
    assert.equal(
      errorText(parseCommandLine(["once", "--workers"])).split("\n")[0],
      "error: option '--workers <n>' argument missing",
    );
    assert.equal(
      errorText(parseCommandLine(["run", "--region"])).split("\n")[0],
      "error: option '--region <region>' argument missing",
    );
  });

  it("names an unknown command, also as the topic of help", () => {
    assert.equal(errorText(parseCommandLine(["bogus"])).split("\n")[0], "error: unknown command 'bogus'");
    assert.equal(
      errorText(parseCommandLine(["help", "bogus"])).split("\n")[0],
      "error: unknown command 'bogus'",
    );
  });

  it("rejects an argument that is not a flag", () => {
    assert.equal(
      errorText(parseCommandLine(["run", "extra"])).split("\n")[0],
      "error: unexpected argument 'extra'",
    );
    assert.equal(
      errorText(parseCommandLine(["once", "--", "--workers"])).split("\n")[0],
      "error: unexpected argument '--workers'",
    );
    assert.equal(
      errorText(parseCommandLine(["version", "1"])).split("\n")[0],
      "error: unexpected argument '1'",
    );
  });

  it("rejects a value given to --help or --version", () => {
    assert.equal(
      errorText(parseCommandLine(["--version=1"])).split("\n")[0],
      "error: option '--version' takes no value",
    );
    assert.equal(
      errorText(parseCommandLine(["run", "--help=yes"])).split("\n")[0],
      "error: option '--help' takes no value",
    );
  });

  it("asks for the version with the version command or --version, also after a command", () => {
    assert.deepEqual(parseCommandLine(["version"]), { kind: "version" });
    assert.deepEqual(parseCommandLine(["--version"]), { kind: "version" });
    assert.deepEqual(parseCommandLine(["run", "--workers", "2", "--version"]), { kind: "version" });
  });

  it("shows the program's help for --help, -h and help, listing every command", () => {
    const text = helpText(parseCommandLine(["--help"]));
    assert.match(text, /^Usage: ecr-creds-refresher \[options\] \[command\]\n/);
    assert.match(text, /^ {2}run \[options\] +run the controller until SIGTERM or SIGINT$/m);
    assert.match(text, /^ {2}once \[options\] +reconcile every ECRPullSecret once/m);
    assert.match(text, /^ {2}version +print the version$/m);
    assert.equal(helpText(parseCommandLine(["-h"])), text);
    assert.equal(helpText(parseCommandLine(["help"])), text);
  });

  it("shows the program's help on stderr, as a usage error, when no command is given", () => {
    assert.equal(errorText(parseCommandLine([])), helpText(parseCommandLine(["--help"])));
  });

  it("shows a command's help with every flag, its default and its environment variable", () => {
    for (const command of ["run", "once"]) {
      const text = helpText(parseCommandLine([command, "--help"]));
      assert.match(text, new RegExp(`^Usage: ecr-creds-refresher ${command} \\[options\\]\n`));
      for (const [, spec] of flagSpecs) {
        const entry = text.slice(text.indexOf(`\n  ${spec.flag}\n`));
        const nextFlag = entry.indexOf("\n  -", 1);
        const ownLines = entry.slice(0, nextFlag).replaceAll(/\n +/g, " ");
        assert.ok(ownLines.includes(spec.description), `${spec.flag} has its description`);
        assert.ok(ownLines.includes(`env: ${spec.env}`), `${spec.flag} names ${spec.env}`);
        if (spec.default !== undefined) {
          assert.ok(ownLines.includes(`default: "${spec.default}"`), `${spec.flag} names its default`);
        }
      }
      assert.equal(helpText(parseCommandLine([command, "-h"])), text);
      assert.equal(helpText(parseCommandLine(["help", command])), text);
    }
  });

  it("shows a command's help even when other arguments of the command are wrong", () => {
    const text = helpText(parseCommandLine(["run", "--nope", "extra", "--help"]));
    assert.match(text, /^Usage: ecr-creds-refresher run \[options\]\n/);
  });

  it("shows the version command's help without configuration flags", () => {
    const text = helpText(parseCommandLine(["version", "--help"]));
    assert.match(text, /^Usage: ecr-creds-refresher version \[options\]\n/);
    assert.doesNotMatch(text, /--workers/);
  });

  it("wraps help text at 80 columns", () => {
    for (const args of [["--help"], ["run", "--help"], ["once", "--help"]]) {
      const long = helpText(parseCommandLine(args))
        .split("\n")
        .filter((line) => line.length > 80);
      assert.deepEqual(long, [], args.join(" "));
    }
  });
});
