import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, it } from "node:test";

import { FakeApiServer, connection, type Reply } from "../../../test/harness/fake-apiserver.ts";
import { eventually } from "../../../test/harness/wait.ts";
import { ManualClock } from "../../clock.ts";
import type { KubeError } from "../errors.ts";
import { KubeClient } from "../rest.ts";
import { WatchStream } from "./watch-stream.ts";
import type { WatchChangeType } from "./watch-stream.ts";

const testTimeoutMs = 20_000;

interface Watched {
  stream: WatchStream;
  clock: ManualClock;
  changes: [WatchChangeType, string | undefined][];
  bookmarks: (string | undefined)[];
  /** Resolves with the watch request's query once the server has it. */
  query: () => Promise<URLSearchParams>;
  close: () => Promise<void>;
}

/** Opens one watch against a fake API server that answers with `reply`. */
async function watch(reply: Reply, onChange?: () => void): Promise<Watched> {
  const api = new FakeApiServer();
  api.reply = reply;
  const clock = new ManualClock();
  const changes: Watched["changes"] = [];
  const bookmarks: Watched["bookmarks"] = [];
  const stream = new WatchStream(
    {
      name: "secrets",
      client: new KubeClient(connection(await api.listen())),
      path: "/api/v1/secrets",
      selectors: new URLSearchParams({ labelSelector: "app=x" }),
      resourceVersion: "4",
      timeoutSeconds: 2,
      stallGraceMs: 500,
      clock,
    },
    {
      onData: () => undefined,
      onChange: (type, object) => {
        changes.push([type, object.metadata?.name]);
        onChange?.();
      },
      onBookmark: (resourceVersion) => bookmarks.push(resourceVersion),
    },
  );
  return {
    stream,
    clock,
    changes,
    bookmarks,
    query: async () => {
      await eventually(() => {
        assert.equal(api.seen.length, 1);
      });
      return new URL(api.seen[0]?.url ?? "", "http://x").searchParams;
    },
    close: async () => {
      stream.stop();
      await api.close();
    },
  };
}

/** The error the watch ended with; fails when it ended otherwise. */
async function endError(stream: WatchStream): Promise<KubeError> {
  const end = await stream.ended;
  assert.ok(end.kind === "error", `the watch ended ${end.kind}`);
  return end.error;
}

function line(event: object): string {
  return `${JSON.stringify(event)}\n`;
}

const added = line({ type: "ADDED", object: { metadata: { name: "a", resourceVersion: "5" } } });

describe("WatchStream", () => {
  it(
    "asks for bookmarks from the given resourceVersion, with the selectors and the timeout",
    { timeout: testTimeoutMs },
    async () => {
      const watched = await watch((_req, res) => res.end(added));
      try {
        const query = await watched.query();
        assert.deepEqual(Object.fromEntries(query), {
          labelSelector: "app=x",
          watch: "true",
          allowWatchBookmarks: "true",
          resourceVersion: "4",
          timeoutSeconds: "2",
        });
        assert.deepEqual(await watched.stream.ended, { kind: "closed" });
      } finally {
        await watched.close();
      }
    },
  );

  it(
    "hands over events split across chunks whole, bookmarks included",
    { timeout: testTimeoutMs },
    async () => {
      const bookmark = line({ type: "BOOKMARK", object: { metadata: { resourceVersion: "6" } } });
      const deleted = line({ type: "DELETED", object: { metadata: { name: "a", resourceVersion: "7" } } });
      const watched = await watch((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(added.slice(0, 10));
        setTimeout(() => res.write(added.slice(10) + bookmark.slice(0, 5)), 20);
        setTimeout(() => res.end(bookmark.slice(5) + deleted.trimEnd()), 40);
      });
      try {
        assert.deepEqual(await watched.stream.ended, { kind: "closed" });
        assert.deepEqual(watched.changes, [
          ["ADDED", "a"],
          ["DELETED", "a"],
        ]);
        assert.deepEqual(watched.bookmarks, ["6"]);
      } finally {
        await watched.close();
      }
    },
  );

  it(
    "decodes a character whose bytes arrive in different chunks, and several events in one chunk",
    { timeout: testTimeoutMs },
    async () => {
      const bytes = Buffer.from(
        line({ type: "ADDED", object: { metadata: { name: "ü€", resourceVersion: "5" } } }) +
          line({ type: "MODIFIED", object: { metadata: { name: "b", resourceVersion: "6" } } }) +
          line({ type: "DELETED", object: { metadata: { name: "b", resourceVersion: "7" } } }),
      );
      // Inside the three bytes of "€".
      const cut = bytes.indexOf(Buffer.from("€")) + 1;
      const watched = await watch((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(bytes.subarray(0, cut));
        setTimeout(() => res.end(bytes.subarray(cut)), 20);
      });
      try {
        assert.deepEqual(await watched.stream.ended, { kind: "closed" });
        assert.deepEqual(watched.changes, [
          ["ADDED", "ü€"],
          ["MODIFIED", "b"],
          ["DELETED", "b"],
        ]);
      } finally {
        await watched.close();
      }
    },
  );

  it(
    "fails a watch the server ends at once without an event, as client-go does",
    { timeout: testTimeoutMs },
    async () => {
      const watched = await watch((_req, res) => res.end());
      try {
        const error = await endError(watched.stream);
        assert.equal(error.kind, "Unavailable");
        assert.match(error.message, /watch of secrets closed after 0 ms without any event/);
      } finally {
        await watched.close();
      }
    },
  );

  it("ends as expired on 410 Gone, as an event or as the response", { timeout: testTimeoutMs }, async () => {
    const gone = { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" };
    for (const answer of [
      (_req: IncomingMessage, res: ServerResponse) => res.end(line({ type: "ERROR", object: gone })),
      (_req: IncomingMessage, res: ServerResponse) => {
        res.statusCode = 410;
        res.end(JSON.stringify(gone));
      },
    ]) {
      const watched = await watch(answer);
      try {
        assert.deepEqual(await watched.stream.ended, { kind: "expired" });
      } finally {
        await watched.close();
      }
    }
  });

  it(
    "ends with an error on an event of unknown type and on a handler that throws, skipping later events",
    { timeout: testTimeoutMs },
    async () => {
      const unknown = await watch((_req, res) => res.end(line({ type: "SURPRISE", object: {} }) + added));
      try {
        const error = await endError(unknown.stream);
        assert.equal(error.kind, "Unknown");
        assert.match(error.message, /unknown type "SURPRISE"/);
        assert.deepEqual(unknown.changes, []);
      } finally {
        await unknown.close();
      }
      const throwing = await watch(
        (_req, res) => res.end(added + added),
        () => {
          throw new Error("handler failed");
        },
      );
      try {
        await endError(throwing.stream);
        assert.equal(throwing.changes.length, 1, "the second event is not handed over");
      } finally {
        await throwing.close();
      }
    },
  );

  it(
    "ends as stalled when nothing arrives for the timeout plus the grace, and as stopped on stop",
    { timeout: testTimeoutMs },
    async () => {
      const silent = await watch((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.flushHeaders();
      });
      try {
        await silent.query();
        silent.clock.advance(2499);
        silent.stream.stop();
        assert.deepEqual(await silent.stream.ended, { kind: "stopped" });
      } finally {
        await silent.close();
      }
      const stalled = await watch((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.flushHeaders();
      });
      try {
        await stalled.query();
        stalled.clock.advance(2500);
        assert.deepEqual(await stalled.stream.ended, { kind: "stalled" });
        assert.equal(stalled.clock.pendingTimers(), 0);
      } finally {
        await stalled.close();
      }
    },
  );
});
