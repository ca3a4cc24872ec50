// Structured logs: pino JSON, or human-readable lines when a terminal is attached. Paths that
// could carry credentials are redacted as a second line of defence; nothing should log them.
import { pino, type Logger } from "pino";

export type { Logger };

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface LoggerOptions {
  level: LogLevel;
  pretty: boolean;
  /** Where lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

const redactPaths = [
  "password",
  "token",
  "authorizationToken",
  "secretAccessKey",
  "sessionToken",
  "data",
  "*.password",
  "*.token",
  "*.data",
  "*.secretAccessKey",
  "*.sessionToken",
];

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    base: { name: "ecr-creds-refresher" },
    redact: { paths: redactPaths, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.pretty) {
    return pino({
      ...base,
      transport: { target: "pino-pretty", options: { colorize: true, translateTime: "SYS:HH:MM:ss" } },
    });
  }
  return options.destination === undefined
    ? pino(base)
    : pino(base, options.destination as pino.DestinationStream);
}
