// Generates TypeScript codecs from protocols/*.proto into src/gen/ (build output, never edited or committed).
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const protos = readdirSync(join(root, 'protocols')).filter(f => f.endsWith('.proto')).map(f => join(root, 'protocols', f))
mkdirSync(join(root, 'src', 'gen'), { recursive: true })
if (protos.length > 0) {
  execFileSync(process.execPath, [join(root, 'node_modules', 'protons', 'dist', 'bin', 'protons.js'), '--strict', '--output', join(root, 'src', 'gen'), ...protos], { stdio: 'inherit' })
}
