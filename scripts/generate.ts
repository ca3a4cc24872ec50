// npm run generate: writes every generated file (see generated-files.ts).
// --check: writes nothing, exits 1 listing the files that are out of date.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { repoRoot } from "../test/harness/paths.ts";
import { generatedFiles, staleGeneratedFiles } from "./generated-files.ts";

if (process.argv.includes("--check")) {
  const stale = await staleGeneratedFiles();
  if (stale.length > 0) {
    console.error(`out of date (run npm run generate): ${stale.join(", ")}`);
    process.exit(1);
  }
  console.log("generated files are up to date");
} else {
  for (const file of generatedFiles) {
    const path = join(repoRoot, file.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, await file.render());
    console.log(`wrote ${file.path}`);
  }
}
