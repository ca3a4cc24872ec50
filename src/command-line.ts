// The command line: which subcommand to run with which flags, and the help text, both derived from
// the flags table in config.ts. Pure: main.ts prints and exits.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { flags, type FlagName, type FlagSpec, type RawConfig } from "./config.ts";

const programName = "ecr-creds-refresher";
const programDescription = "Keeps AWS ECR image pull secrets fresh across a Kubernetes cluster.";
const helpWidth = 80;

const commands = {
  run: { description: "run the controller until SIGTERM or SIGINT", takesFlags: true },
  once: {
    description:
      "reconcile every ECRPullSecret once, print a summary and exit: 0 when all are Ready, 1 otherwise",
    takesFlags: true,
  },
  version: { description: "print the version", takesFlags: false },
} as const;

type CommandName = keyof typeof commands;

/** What the command line asks for. */
export type CommandLine =
  | { kind: "run" | "once"; flags: RawConfig }
  | { kind: "version" }
  /** `text` goes to stdout and the process exits 0. */
  | { kind: "help"; text: string }
  /** `text` goes to stderr and the process exits 2. */
  | { kind: "usage-error"; text: string };

interface ConfigFlag {
  key: FlagName;
  spec: FlagSpec;
  /** `--dry-run [bool]`: the value may be left out, and then is "true". */
  valueOptional: boolean;
}

/** Each configuration flag by its long name without the dashes. */
const configFlags = new Map<string, ConfigFlag>(
  (Object.entries(flags) as [FlagName, FlagSpec][]).map(([key, spec]) => {
    const [name = "", value = ""] = spec.flag.split(" ");
    return [name.slice("--".length), { key, spec, valueOptional: value.startsWith("[") }];
  }),
);

const programOptions = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const satisfies ParseArgsOptionsConfig;

// An optional value is declared boolean so that parseArgs leaves a following word as a positional,
// which readCommandFlags then takes as the value, as `--dry-run false` means.
const commandOptions: ParseArgsOptionsConfig = {
  ...programOptions,
  ...Object.fromEntries(
    [...configFlags].map(([name, flag]) => [name, { type: flag.valueOptional ? "boolean" : "string" }]),
  ),
};

type Token = NonNullable<ReturnType<typeof parseArgs>["tokens"]>[number];
type OptionToken = Extract<Token, { kind: "option" }>;

function tokensOf(args: readonly string[], options: ParseArgsOptionsConfig): Token[] {
  // Not strict: unknown flags come back as tokens, so that the error can name them.
  return parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true }).tokens;
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(commands, name);
}

/** `--help` or `-h` with no value: `--help=x` is an error instead. */
function isSwitch(token: OptionToken, name: "help" | "version"): boolean {
  return token.name === name && token.value === undefined;
}

/**
 * Reads the arguments after the program name: options before the subcommand, the subcommand, and
 * its options. `--help` wins over any error in the same subcommand's options, as a user who asks
 * for help after a typo expects.
 */
export function parseCommandLine(args: readonly string[]): CommandLine {
  for (const token of tokensOf(args, programOptions)) {
    if (token.kind === "option-terminator") continue;
    if (token.kind === "positional") return readCommand(token.value, args.slice(token.index + 1));
    if (isSwitch(token, "help")) return { kind: "help", text: programHelp() };
    if (isSwitch(token, "version")) return { kind: "version" };
    return optionError(token, undefined);
  }
  return { kind: "usage-error", text: programHelp() };
}

function readCommand(name: string, args: readonly string[]): CommandLine {
  if (name === "help") {
    const [topic] = args;
    if (topic === undefined) return { kind: "help", text: programHelp() };
    return isCommand(topic) ? { kind: "help", text: commandHelp(topic) } : unknownCommand(topic);
  }
  if (!isCommand(name)) return unknownCommand(name);
  const tokens = tokensOf(args, commands[name].takesFlags ? commandOptions : programOptions);
  if (tokens.some((token) => token.kind === "option" && isSwitch(token, "help"))) {
    return { kind: "help", text: commandHelp(name) };
  }
  return readCommandFlags(name, tokens);
}

function readCommandFlags(name: CommandName, tokens: Token[]): CommandLine {
  const values: RawConfig = {};
  const queue = [...tokens];
  for (let token = queue.shift(); token !== undefined; token = queue.shift()) {
    if (token.kind === "option-terminator") continue;
    if (token.kind === "positional") return usageError(`unexpected argument '${token.value}'`, name);
    if (isSwitch(token, "version")) return { kind: "version" };
    const flag = commands[name].takesFlags ? configFlags.get(token.name) : undefined;
    if (flag === undefined) return optionError(token, name);
    let value = token.value;
    const next = queue[0];
    if (flag.valueOptional && value === undefined && next?.kind === "positional") {
      queue.shift();
      value = next.value;
    }
    if (value === undefined && !flag.valueOptional) {
      return usageError(`option '${flag.spec.flag}' argument missing`, name);
    }
    // The last of a repeated flag wins.
    values[flag.key] = value ?? "true";
  }
  if (name === "version") return { kind: "version" };
  return { kind: name, flags: values };
}

function optionError(token: OptionToken, command: CommandName | undefined): CommandLine {
  const known = token.name === "help" || token.name === "version";
  const message =
    known && token.value !== undefined
      ? `option '${token.rawName}' takes no value`
      : `unknown option '${token.rawName}'`;
  return usageError(message, command);
}

function unknownCommand(name: string): CommandLine {
  return usageError(`unknown command '${name}'`, undefined);
}

function usageError(message: string, command: CommandName | undefined): CommandLine {
  const helpCommand = command === undefined ? programName : `${programName} ${command}`;
  return { kind: "usage-error", text: `error: ${message}\nSee '${helpCommand} --help'.\n` };
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

/** Terms and their descriptions side by side, the descriptions wrapped in their column. */
function columns(rows: [term: string, description: string][], termWidth: number): string[] {
  return rows.flatMap(([term, description]) =>
    wrap(description, helpWidth - termWidth - 4).map(
      (line, i) => `  ${(i === 0 ? term : "").padEnd(termWidth)}  ${line}`,
    ),
  );
}

function programHelp(): string {
  const options: [string, string][] = [
    ["--version", "print the version"],
    ["-h, --help", "display help for command"],
  ];
  const commandRows: [string, string][] = [
    ...Object.entries(commands).map(([name, command]): [string, string] => [
      command.takesFlags ? `${name} [options]` : name,
      command.description,
    ]),
    ["help [command]", "display help for command"],
  ];
  const termWidth = Math.max(...[...options, ...commandRows].map(([term]) => term.length));
  return [
    `Usage: ${programName} [options] [command]`,
    "",
    programDescription,
    "",
    "Options:",
    ...columns(options, termWidth),
    "",
    "Commands:",
    ...columns(commandRows, termWidth),
    "",
  ].join("\n");
}

const flagIndent = "      ";
const flagTextWidth = helpWidth - flagIndent.length;

/** A flag on its own line, what it does indented below. */
function flagHelp(flag: string, lines: string[]): string[] {
  return [`  ${flag}`, ...lines.map((line) => flagIndent + line)];
}

/** A flag's default and environment variable: one line when they fit, else one line each. */
function originOf(spec: FlagSpec): string[] {
  const parts = [
    ...(spec.default === undefined ? [] : [`default: ${JSON.stringify(spec.default)}`]),
    `env: ${spec.env}`,
  ];
  const line = parts.join(", ");
  return line.length <= flagTextWidth ? [line] : parts;
}

function commandHelp(name: CommandName): string {
  const command = commands[name];
  const configHelp = command.takesFlags
    ? [...configFlags.values()].flatMap(({ spec }) =>
        flagHelp(spec.flag, [...wrap(spec.description, flagTextWidth), ...originOf(spec)]),
      )
    : [];
  return [
    `Usage: ${programName} ${name} [options]`,
    "",
    ...wrap(command.description, helpWidth),
    "",
    "Options:",
    ...configHelp,
    ...flagHelp("-h, --help", ["display help for command"]),
    "",
  ].join("\n");
}
