// Argo CD and Flux objects checked offline against their CRDs, with the npm packages
// @kubernetes-models/argo-cd and @kubernetes-models/flux-cd (the CRDs' schemas, compiled):
//   NODE_PATH=.tools/node/node_modules node harness/kube_models.cjs FILE.json...
// Each file holds one object or a list. Their compiled schemas accept unknown fields (as an
// API server would, dropping them), so each object is also type-checked by TypeScript against
// the packages' types as an object literal: a misspelt field is an excess property there.
// Prints one finding a line, exits 1 on any finding (2 on an object of an unknown kind).
const { readFileSync, writeFileSync, mkdtempSync, rmSync } = require("node:fs");
const { dirname, join } = require("node:path");
const { tmpdir } = require("node:os");
const ts = require("typescript");

const MODELS = {
  "argoproj.io/v1alpha1/Application": "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application",
  "kustomize.toolkit.fluxcd.io/v1/Kustomization":
    "@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1/Kustomization",
  "source.toolkit.fluxcd.io/v1/GitRepository":
    "@kubernetes-models/flux-cd/source.toolkit.fluxcd.io/v1/GitRepository",
};

function objects() {
  const found = [];
  for (const file of process.argv.slice(2)) {
    const data = JSON.parse(readFileSync(file, "utf8"));
    for (const [index, object] of (Array.isArray(data) ? data : [data]).entries()) {
      found.push({ where: `${file}[${index}]`, object });
    }
  }
  return found;
}

function schemaFindings(items) {
  const findings = [];
  for (const { where, object, module } of items) {
    const Model = require(module)[object.kind];
    try {
      new Model(object).validate();
    } catch (error) {
      findings.push(`${where}: ${error.message}`);
    }
  }
  return findings;
}

function typeFindings(items) {
  // One line an object, so that a diagnostic's line names its object.
  const lines = items.map(
    ({ object, module }, i) => `import type { I${object.kind} as T${i} } from "${module}";`,
  );
  const first = lines.length;
  items.forEach(({ object }, i) => lines.push(`export const o${i}: T${i} = ${JSON.stringify(object)};`));
  const folder = mkdtempSync(join(tmpdir(), "kube-models-"));
  try {
    const file = join(folder, "objects.ts");
    writeFileSync(file, lines.join("\n"));
    // Non-relative imports resolve from the folder holding the packages (NODE_PATH's), the
    // one TypeScript was installed into beside them: node_modules/typescript/lib/typescript.js.
    const modules = dirname(dirname(dirname(require.resolve("typescript"))));
    const program = ts.createProgram([file], {
      noEmit: true, strict: true, skipLibCheck: true, baseUrl: modules,
      moduleResolution: ts.ModuleResolutionKind.Node10, module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2020, types: [],
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, " ");
      if (!d.file) return text;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      const item = items[line - first];
      return `${item ? item.where : "objects.ts"}: ${text}`;
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const items = objects().map((item) => ({
  ...item,
  module: MODELS[`${item.object.apiVersion}/${item.object.kind}`],
}));
const unknown = items.filter((item) => !item.module);
for (const { where, object } of unknown) {
  console.log(`${where}: no schema here for ${object.apiVersion} ${object.kind}`);
}
if (unknown.length) process.exit(2);
const findings = [...schemaFindings(items), ...typeFindings(items)];
for (const finding of findings) console.log(finding);
process.exit(findings.length ? 1 : 0);
