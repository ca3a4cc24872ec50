import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeConfigError } from "./kubeconfig-error.ts";
import { noProxyMatches, parseProxyUrl, proxyFor } from "./proxy.ts";

describe("proxyFor, by Go's http.ProxyFromEnvironment rules", () => {
  const cases: { name: string; server: string; env: Record<string, string>; proxy: string | undefined }[] = [
    {
      name: "HTTPS_PROXY for an https server",
      server: "https://kube.example:6443",
      env: { HTTPS_PROXY: "http://p:3128" },
      proxy: "http://p:3128/",
    },
    {
      name: "https_proxy when HTTPS_PROXY is unset",
      server: "https://kube.example",
      env: { https_proxy: "http://low:1" },
      proxy: "http://low:1/",
    },
    {
      name: "HTTPS_PROXY before https_proxy",
      server: "https://kube.example",
      env: { HTTPS_PROXY: "http://up:1", https_proxy: "http://low:1" },
      proxy: "http://up:1/",
    },
    {
      name: "a bare host:port as http://",
      server: "https://kube.example",
      env: { HTTPS_PROXY: "p:3128" },
      proxy: "http://p:3128/",
    },
    {
      name: "an https:// proxy",
      server: "https://kube.example",
      env: { HTTPS_PROXY: "https://p:443" },
      proxy: "https://p/",
    },
    {
      name: "HTTP_PROXY only for an http server",
      server: "http://kube.example:8080",
      env: { HTTP_PROXY: "http://p:1" },
      proxy: "http://p:1/",
    },
    {
      name: "no HTTP_PROXY for an https server",
      server: "https://kube.example",
      env: { HTTP_PROXY: "http://p:1" },
      proxy: undefined,
    },
    {
      name: "never for localhost",
      server: "https://localhost:6443",
      env: { HTTPS_PROXY: "http://p:1" },
      proxy: undefined,
    },
    {
      name: "never for 127.0.0.0/8",
      server: "https://127.1.2.3:6443",
      env: { HTTPS_PROXY: "http://p:1" },
      proxy: undefined,
    },
    {
      name: "never for ::1",
      server: "https://[::1]:6443",
      env: { HTTPS_PROXY: "http://p:1" },
      proxy: undefined,
    },
    {
      name: "NO_PROXY=*",
      server: "https://kube.example",
      env: { HTTPS_PROXY: "http://p:1", NO_PROXY: "*" },
      proxy: undefined,
    },
    {
      name: "no_proxy when NO_PROXY is unset",
      server: "https://kube.example",
      env: { HTTPS_PROXY: "http://p:1", no_proxy: "kube.example" },
      proxy: undefined,
    },
  ];
  for (const c of cases) {
    it(`picks ${c.name}`, () => {
      assert.equal(proxyFor(new URL(c.server), undefined, c.env)?.href, c.proxy);
    });
  }

  it("uses the kubeconfig's proxy-url for every host, loopback too, whatever the environment says", () => {
    const proxy = new URL("http://127.0.0.1:3128");
    assert.equal(proxyFor(new URL("https://127.0.0.1:6443"), proxy, { NO_PROXY: "*" }), proxy);
  });
});

describe("noProxyMatches", () => {
  const cases: [string, string, string, boolean][] = [
    ["kube.example", "kube.example", "443", true],
    ["kube.example", "api.kube.example", "443", true],
    ["kube.example", "notkube.example", "443", false],
    [".kube.example", "kube.example", "443", false],
    [".kube.example", "api.kube.example", "443", true],
    ["*.kube.example", "api.kube.example", "443", true],
    ["*.kube.example", "kube.example", "443", false],
    ["kube.example:6443", "kube.example", "6443", true],
    ["kube.example:6443", "kube.example", "443", false],
    ["10.0.0.0/8", "10.1.2.3", "443", true],
    ["10.0.0.0/8", "11.1.2.3", "443", false],
    ["fd00::/8", "fd00::1", "443", true],
    ["10.1.2.3", "10.1.2.3", "443", true],
    ["10.1.2.3:6443", "10.1.2.3", "443", false],
    ["[fd00::1]:443", "fd00::1", "443", true],
    [" other.example , KUBE.example ", "kube.example", "443", true],
    ["10.0.0.0/8", "kube.example", "443", false],
  ];
  for (const [noProxy, host, port, expected] of cases) {
    it(`${expected ? "exempts" : "does not exempt"} ${host}:${port} with NO_PROXY=${noProxy.trim()}`, () => {
      assert.equal(noProxyMatches(noProxy, host, port), expected);
    });
  }
});

describe("parseProxyUrl", () => {
  it("takes http:// and https:// proxies, with credentials", () => {
    assert.equal(parseProxyUrl("http://user:pass@proxy:3128", "here").href, "http://user:pass@proxy:3128/");
    assert.equal(parseProxyUrl("https://proxy", "here").protocol, "https:");
  });

  it("refuses SOCKS5 and other schemes without quoting credentials", () => {
    for (const value of ["socks5://u:secret-pass@proxy:1080", "ftp://u:secret-pass@proxy", "not a url"]) {
      assert.throws(
        () => parseProxyUrl(value, "here"),
        (err: unknown) => err instanceof KubeConfigError && !err.message.includes("secret-pass"),
      );
    }
  });
});
