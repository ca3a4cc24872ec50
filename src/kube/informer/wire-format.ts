// What the API server sends for a list and a watch, checked and typed, so the informer works
// on known shapes and a malformed response is a KubeError rather than a crash.

import type { IncomingMessage } from "node:http";
import type { KubernetesObject } from "@kubernetes/client-node";

import { classifyKubeError, KubeError } from "../errors.ts";

/** The kind and apiVersion a list's items come without, and watch objects carry. */
export interface ListTypeMeta {
  apiVersion: string | undefined;
  itemKind: string | undefined;
}

export interface ListPage extends ListTypeMeta {
  items: KubernetesObject[];
  resourceVersion: string;
  continueToken: string | undefined;
}

export interface WatchEvent {
  type: string;
  object: KubernetesObject;
}

/** The KubeError a response other than 200 OK stands for. */
export function httpError(response: IncomingMessage, body: string): KubeError {
  return classifyKubeError({ statusCode: response.statusCode, body, headers: response.headers });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function malformed(what: string): KubeError {
  return new KubeError({ kind: "Unknown", message: `${what}: the server sent an unexpected response shape` });
}

/** One page of a list: its items, the collection's resourceVersion and the next page's token, if any. */
export function parseListPage(value: unknown, name: string): ListPage {
  // An empty PartialObjectMetadataList comes with "items": null.
  if (
    !isRecord(value) ||
    !(Array.isArray(value.items) || value.items === null) ||
    !isRecord(value.metadata)
  ) {
    throw malformed(`list of ${name}`);
  }
  const rawItems: unknown[] = value.items ?? [];
  const items: KubernetesObject[] = [];
  for (const item of rawItems) {
    if (!isRecord(item)) throw malformed(`list of ${name}`);
    items.push(item);
  }
  const { resourceVersion, continue: continueToken } = value.metadata;
  if (typeof resourceVersion !== "string") throw malformed(`list of ${name}`);
  return {
    ...listTypeMeta(value),
    items,
    resourceVersion,
    continueToken: typeof continueToken === "string" && continueToken !== "" ? continueToken : undefined,
  };
}

/** The kind and apiVersion of a list's items, from the list or its head. */
export function listTypeMeta(value: unknown): ListTypeMeta {
  if (!isRecord(value)) return { apiVersion: undefined, itemKind: undefined };
  return {
    apiVersion: typeof value.apiVersion === "string" ? value.apiVersion : undefined,
    itemKind: typeof value.kind === "string" ? value.kind.replace(/List$/, "") : undefined,
  };
}

/** One item of a list read item by item. */
export function parseListItem(value: unknown, name: string): KubernetesObject {
  if (!isRecord(value)) throw malformed(`list of ${name}`);
  return value;
}

/** The item with the kind and apiVersion a watch event would carry, in the same key order. */
export function withTypeMeta(item: KubernetesObject, page: ListTypeMeta): KubernetesObject {
  const typeMeta: KubernetesObject = {};
  if (page.itemKind !== undefined) typeMeta.kind = page.itemKind;
  if (page.apiVersion !== undefined) typeMeta.apiVersion = page.apiVersion;
  return { ...typeMeta, ...item };
}

/** One line of a watch stream: an event type and the object it carries. */
export function parseWatchEvent(value: unknown, name: string): WatchEvent {
  if (!isRecord(value) || typeof value.type !== "string" || !isRecord(value.object)) {
    throw malformed(`watch of ${name}`);
  }
  return { type: value.type, object: value.object };
}
