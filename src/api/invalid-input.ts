// The error value returned by the api/ parsers: bad user input is an expected outcome, not an exception.

export interface InvalidInput {
  readonly kind: "InvalidInput";
  /** Says what is wrong and what to write instead; safe to show in status, Events and logs. */
  readonly message: string;
}

export function invalidInput(message: string): InvalidInput {
  return { kind: "InvalidInput", message };
}

export function isInvalidInput(value: unknown): value is InvalidInput {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "InvalidInput";
}
