// Runs the compiled test files with Node's test runner. Usage: run-tests.js [unit|integration|interop ...]
// Unit tests run in parallel; integration and interop suites start real daemons, so they run one file at a time
// to keep this 2-core machine from turning timing into flakiness.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const suites = { unit: 'dist/test/unit', integration: 'dist/test/integration', interop: 'dist/interop' }
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(suites)
// Unit and integration suites must exist; interop scenarios join the default run as they are written.
const required = new Set(['unit', 'integration', ...process.argv.slice(2)])

function find (dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return find(p)
    return name.endsWith('.test.js') ? [p] : []
  }).sort()
}

let failed = false
for (const suite of wanted) {
  if (suites[suite] == null) { console.error(`unknown suite ${suite}`); process.exit(2) }
  const files = find(join(root, suites[suite]))
  if (files.length === 0) {
    if (required.has(suite)) { console.error(`no test files in suite ${suite}`); failed = true }
    continue
  }
  const concurrency = suite === 'unit' ? 2 : 1
  console.log(`# suite ${suite}: ${files.length} files`)
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit', cwd: root })
  if (r.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
