// Reads a list response. A page of the usual size is parsed whole, by V8's native JSON.parse; a
// larger one (an unpaged list, or a server that ignored the limit) is read item by item as its
// bytes arrive, so it is never in memory whole: read at once, its chunks, its body string and the
// parsed list would sit side by side.

import type { IncomingMessage } from "node:http";

import { readChunks } from "../rest.ts";

export interface ListItemHandlers {
  /**
   * The list's JSON up to its items, closed with an empty "items": kind, apiVersion and metadata
   * when the server writes them first, as it does for built-in kinds.
   */
  onHead(head: string): void;
  /** One element of the list's "items", as JSON. */
  onItem(item: string): void;
}

const [quote, backslash, comma] = [0x22, 0x5c, 0x2c];
const [openBrace, closeBrace, openBracket, closeBracket] = [0x7b, 0x7d, 0x5b, 0x5d];
const [space, tab, lineFeed, carriageReturn] = [0x20, 0x09, 0x0a, 0x0d];
const itemsKey = /"items"\s*:\s*$/;

function isSeparator(byte: number | undefined): boolean {
  return byte === comma || byte === space || byte === tab || byte === lineFeed || byte === carriageReturn;
}

/**
 * Splits a List's JSON, fed in chunks of any size, into its items and the rest. It only tracks
 * strings and nesting; parsing is left to the caller, and JSON that is not a list comes out whole
 * as the rest, where parsing it finds the fault. Multi-byte characters split across chunks are
 * whole again when an item is decoded: every byte it looks at is ASCII, which never occurs inside
 * one.
 */
export class ListItemSplitter {
  readonly #handlers: ListItemHandlers;
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** Inside the top-level "items" array. */
  #inItems = false;
  /** The chunks of the item being read, while one is. */
  #item: Buffer[] | undefined;
  /** Everything but the items and the commas between them. */
  #rest: Buffer[] = [];

  constructor(handlers: ListItemHandlers) {
    this.#handlers = handlers;
  }

  write(chunk: Buffer): void {
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (this.#inString) {
        const closing = this.#closingQuote(chunk, i);
        if (closing === -1) break;
        this.#inString = false;
        i = closing;
        continue;
      }
      const byte = chunk[i];
      if (byte === quote) {
        this.#inString = true;
      } else if (byte === openBrace || byte === openBracket) {
        if (this.#inItems && this.#depth === 2) {
          this.#keepUnlessSeparators(chunk.subarray(from, i));
          from = i;
          this.#item = [];
        } else if (this.#depth === 1 && byte === openBracket && this.#startsItems(chunk.subarray(from, i))) {
          this.#rest.push(chunk.subarray(from, i + 1));
          from = i + 1;
          this.#inItems = true;
          this.#handlers.onHead(`${Buffer.concat(this.#rest).toString("utf8")}]}`);
        }
        this.#depth++;
      } else if (byte === closeBrace || byte === closeBracket) {
        this.#depth--;
        if (this.#inItems && this.#depth === 2 && this.#item !== undefined) {
          this.#item.push(chunk.subarray(from, i + 1));
          from = i + 1;
          const item = Buffer.concat(this.#item).toString("utf8");
          this.#item = undefined;
          this.#handlers.onItem(item);
        } else if (this.#inItems && this.#depth === 1) {
          this.#keepUnlessSeparators(chunk.subarray(from, i));
          from = i;
          this.#inItems = false;
        }
      }
    }
    const tail = chunk.subarray(from);
    if (this.#item !== undefined) this.#item.push(tail);
    else if (this.#inItems && this.#depth === 2) this.#keepUnlessSeparators(tail);
    else this.#rest.push(tail);
  }

  /**
   * Inside a string from `from`: the index of the quote that closes it, or -1 when it goes on past
   * the chunk (then whether the chunk ends in an escaping backslash is kept for the next one). The
   * search is Buffer.indexOf's, not a loop over every byte: most of a Kubernetes object's bytes are
   * in strings, and V8 runs this loop unoptimized for most of the operator's life (see
   * optimizing-compiler.ts).
   */
  #closingQuote(chunk: Buffer, from: number): number {
    let start = from;
    if (this.#escaped) {
      if (start >= chunk.length) return -1;
      this.#escaped = false;
      start += 1;
    }
    for (;;) {
      const found = chunk.indexOf(quote, start);
      const end = found === -1 ? chunk.length : found;
      // Backslashes right before it, none earlier than `start`: an odd number escapes it.
      let run = 0;
      while (end - run - 1 >= start && chunk[end - run - 1] === backslash) run++;
      if (found === -1) {
        this.#escaped = run % 2 === 1;
        return -1;
      }
      if (run % 2 === 0) return found;
      start = found + 1;
    }
  }

  /** The list's JSON without its items, once the last chunk is in. */
  end(): string {
    const rest = Buffer.concat(this.#rest).toString("utf8");
    this.#rest = [];
    return rest;
  }

  /** Whether the top-level array opening after `before` is the list's "items". */
  #startsItems(before: Buffer): boolean {
    return itemsKey.test(Buffer.concat([...this.#rest, before]).toString("utf8"));
  }

  /** Bytes between items are dropped when they are only commas and whitespace, as they should be. */
  #keepUnlessSeparators(between: Buffer): void {
    if (!between.every(isSeparator)) this.#rest.push(between);
  }
}

/**
 * Bytes up to which a list response is held and parsed whole. A page of 500 objects of the kinds
 * the operator lists is a few hundred KiB; walking bytes in JavaScript costs several times what
 * JSON.parse does, and the operator runs it without an optimizing compiler.
 */
export const wholeListBytes = 2 * 1024 * 1024;

/** A list response read: whole, as its JSON, or split, as its JSON without the items. */
export type ListBody = { whole: string } | { rest: string };

/**
 * Reads a list response, calling `onData` for each chunk. Up to `wholeUpTo` bytes it comes back
 * whole; past that, what was held and every later chunk go through a ListItemSplitter, the items to
 * `handlers` as they arrive. A handler that throws ends the response and rejects.
 */
export async function readList(
  response: IncomingMessage,
  onData: () => void,
  handlers: ListItemHandlers,
  wholeUpTo = wholeListBytes,
): Promise<ListBody> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  let splitter: ListItemSplitter | undefined;
  await readChunks(response, (chunk) => {
    onData();
    if (splitter !== undefined) {
      splitter.write(chunk);
      return;
    }
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes <= wholeUpTo) return;
    splitter = new ListItemSplitter(handlers);
    for (const part of held) splitter.write(part);
    held = [];
  });
  if (splitter !== undefined) return { rest: splitter.end() };
  return { whole: Buffer.concat(held).toString("utf8") };
}
