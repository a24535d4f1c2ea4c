import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MetaOp, MetaRequest, MetaResponse, MetaStatus } from '../../../src/gen/meta.js'
import { NotFoundError } from '../../../src/metadata/errors.js'
import { CapabilityExpiredError, GuestNameTakenError, PermissionDeniedError } from '../../../src/permissions/errors.js'
import { META_PROTOCOL_LIMITS, NotOwnerError, REQUIRED_RIGHT, TooManyWritesError, UnknownWriteError, WriteTooLargeError, metaStatusOf } from '../../../src/permissions/meta-protocol.js'

describe('meta protocol', () => {
  it('maps failures to statuses by their stable names', () => {
    assert.equal(metaStatusOf(new PermissionDeniedError('bob@garage.collective.local', '/media', 'write')), MetaStatus.DENIED)
    assert.equal(metaStatusOf(new NotFoundError('x')), MetaStatus.NOT_FOUND)
    assert.equal(metaStatusOf(new GuestNameTakenError('x')), MetaStatus.CONFLICT)
    // a capability error never reaches a meta response; if it did it is the coordinator's own failure
    assert.equal(metaStatusOf(new CapabilityExpiredError('x')), MetaStatus.ERROR)
    assert.equal(metaStatusOf(new Error('disk')), MetaStatus.ERROR)
    assert.equal(metaStatusOf(new UnknownWriteError('x')), MetaStatus.NOT_FOUND)
    assert.equal(metaStatusOf(new TooManyWritesError('x')), MetaStatus.CONFLICT)
    assert.equal(metaStatusOf(new WriteTooLargeError('x')), MetaStatus.INVALID)
    assert.equal(metaStatusOf(new NotOwnerError('x')), MetaStatus.ERROR)
  })

  it('names the right of every path operation', () => {
    assert.equal(REQUIRED_RIGHT[MetaOp.OPEN_READ], 'read')
    assert.equal(REQUIRED_RIGHT[MetaOp.RM], 'delete')
    assert.equal(REQUIRED_RIGHT[MetaOp.INVITE_REDEEM], undefined)
  })

  it('encodes byte counts and timestamps above 2^31 exactly', () => {
    const big = 2 ** 31 + 12345
    const req = MetaRequest.decode(MetaRequest.encode({ op: MetaOp.GRANT, path: '/media', subject: '*@*.collective.local', rights: 'read', expiresAtMs: 1_800_000_000_000, size: big }))
    assert.equal(req.expiresAtMs, 1_800_000_000_000)
    assert.equal(req.size, big)
    const res = MetaResponse.decode(MetaResponse.encode({ status: MetaStatus.OK, size: big, entry: { path: '/m', type: 'file', mode: 0o644, size: big, mtimeMs: 1_800_000_000_000, ctimeMs: 1, owner: 'alice@home.collective.local', version: 1, id: big } }))
    assert.equal(res.size, big)
    assert.equal(res.entry?.size, big)
    assert.equal(res.entry?.id, big)
    assert.ok(MetaRequest.encode(req).byteLength < META_PROTOCOL_LIMITS.maxMessageBytes)
  })
})
