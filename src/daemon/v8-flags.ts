/**
 * The V8 flags a daemon runs with. `up` starts every daemon with them, and the `collective-p2p` command carries
 * them in its `#!` line (a unit test keeps the two the same).
 *
 * `--initial-old-space-size=128`: a daemon's JavaScript heap is small (about 30 MB live), so V8 sets its old
 * generation's limit only some 24 MB above it. Chunk bytes in flight count against that limit as external memory,
 * and a transfer keeps 10 to 30 MB of them in flight: each full collection then left the heap over its limit
 * again at once, and a 500 MB read ran 17 to 19 full collections back to back, up to a fifth of the coordinator's
 * time. With a floor of 128 MB under the limit, only the external-memory trigger (every 64 MB of it) is left:
 * five or six per 500 MB. The floor is a limit, not a reservation: memory is still only taken as it is used.
 *
 * `--max-semi-space-size=4`: a transfer allocates buffers fast, and V8 answers that by growing its young
 * generation from 1 MB toward the 16 MB default per semi-space, which holds about three times that. Almost
 * nothing in it survives (the buffers' bytes live outside it), so the growth bought no speed: over three
 * interleaved pairs of 500 MB put and get, walls and CPU seconds were the same within the noise, and the
 * coordinator's peak RSS was 211-217 MB against 228-236.
 */
export const DAEMON_V8_FLAGS: readonly string[] = ['--initial-old-space-size=128', '--max-semi-space-size=4']
