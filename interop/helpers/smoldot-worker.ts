// Runs smoldot's WASM in a worker thread: its timers die with the worker (in the main thread they would keep
// the test process alive for a minute after terminate), and its CPU stays off the test's event loop.
import { parentPort } from 'node:worker_threads'
import { run } from 'smoldot/worker'
import type { MessagePort } from 'node:worker_threads'

parentPort?.once('message', (port: MessagePort) => { void run(port as any) })
