// Builds fuse-native's addon from its source, which patch-package has just patched (patches/fuse-native+*.patch:
// upstream hands the access time to utimens as the modification time too). node-gyp-build prefers build/Release
// over the prebuilt addon in the package, so the mount loads this build; src/fuse/mount.ts refuses the prebuilt
// one. The build needs make, a C compiler and python3 (node-gyp), nothing else: libfuse's headers come with
// fuse-native's dependency fuse-shared-library, and the addon links Debian's libfuse.so.2 at run time.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'

const require = createRequire(import.meta.url)
const dir = dirname(require.resolve('fuse-native/package.json'))
// npm hands its own node-gyp to install scripts; outside npm, the one next to the npm that runs this node
const gyp = process.env.npm_config_node_gyp ?? require.resolve('node-gyp/bin/node-gyp.js', { paths: [dirname(process.execPath) + '/../lib/node_modules/npm'] })

const r = spawnSync(process.execPath, [gyp, 'rebuild', '--loglevel=warn'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
if (r.status !== 0) {
  console.error(`collective-p2p: building fuse-native in ${dir} failed (${r.error?.message ?? `exit ${r.status}`}).`)
  console.error('The FUSE mount needs it; install make, a C compiler and python3 (Debian: build-essential python3), then run "npm run build:fuse".')
  process.exit(1)
}
console.error('collective-p2p: built fuse-native with the utimens fix (node_modules/fuse-native/build/Release)')
