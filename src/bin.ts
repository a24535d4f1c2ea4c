#!/usr/bin/env -S node --initial-old-space-size=128 --max-semi-space-size=4
// The polyfill must run before libp2p is loaded; static imports run in order, so it comes first.
import './polyfill.js'
import { main } from './cli/main.js'

main(process.argv.slice(2)).then(code => {
  process.exitCode = code
}, err => {
  console.error(err)
  process.exitCode = 1
})
