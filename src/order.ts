// Ordering of names. Code-point order, not String.prototype.localeCompare: names such as hosts and
// namespaces need no collation, the result must not depend on the locale, and the first
// localeCompare loads ICU's collation data, several MiB of resident memory.

/** Compares two strings by UTF-16 code unit, as a sort comparator. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
