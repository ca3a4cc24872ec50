// node:http, loaded through require. An ESM import of node:http reads every export to build the
// module's namespace, and reading its lazy WebSocket, CloseEvent and MessageEvent loads Node's
// bundled undici: about 9 MiB resident that nothing here uses (nodejs/node#59686).
import { createRequire } from "node:module";
import type * as Http from "node:http";

const require = createRequire(import.meta.url);

export const http = require("node:http") as typeof Http;
