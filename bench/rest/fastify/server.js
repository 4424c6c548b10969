'use strict'
// The Fastify peer of bench/rest/run.sh: the two benchmarked routes of openapi/wallet.yaml with
// Fastify route schemas built from the spec's component schemas (ajv validation of params and
// body, fast-json-stringify serialization of the responses).
//
//   POST /wallets/:walletId/transactions   CreateTransactionRequest -> 201 TransactionResponse
//   GET  /wallets/:walletId                -> 200 WalletResponse
//
// Tuned to do what the C servers do, no more, no less: ajv without removeAdditional and without
// type coercion (Fastify's defaults strip unknown members and coerce types), first error only,
// `format` as an annotation (tablium's default), logger off. Errors use tablium's envelope
// {"error":{"code","message","requestId","details":[{path,rule,message}]}} with the same paths,
// rules and messages; X-Request-ID is echoed (1-128 visible ASCII) or generated (32 hex digits).
// No database: responses are built from the request with fixed ids and timestamps.
//
// Environment: PORT (default 8083; 0 = ephemeral), HOST (default 127.0.0.1). Prints
// "listening on PORT" once ready; stops on SIGTERM/SIGINT.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const yaml = require('js-yaml')
const Fastify = require('fastify')

const SPEC = path.join(__dirname, '..', '..', '..', 'openapi', 'wallet.yaml')
const TX_ID = '3f6c1d2e-8a9b-4c7d-9e0f-1a2b3c4d5e6f'
const USER_ID = '6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34'
const CREATED_AT = '2026-11-24T10:00:00Z'
const BALANCE = 1000
const SCHEMA_MISMATCH = 'the request does not match the schema'

// The spec's component schemas as Fastify shared schemas: '#/components/schemas/X' -> 'X#';
// the shared files they $ref (../schemas/common/*.json) as schemas of their own $id.
function loadSchemas (file) {
  const spec = yaml.load(fs.readFileSync(file, 'utf8'))
  const files = new Map() // path -> the shared file's $id
  const shared = []
  const rewrite = (node, base) => {
    if (Array.isArray(node)) return node.map((x) => rewrite(x, base))
    if (node === null || typeof node !== 'object') return node
    const out = {}
    for (const [k, v] of Object.entries(node)) {
      if (k === '$schema' || k.startsWith('x-')) continue // Fastify's Ajv: its own dialect, strict
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
        out[k] = v.slice('#/components/schemas/'.length) + '#'
      } else if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) {
        const [rel, frag] = v.split('#')
        const target = path.resolve(base, rel)
        if (!files.has(target)) {
          const doc = JSON.parse(fs.readFileSync(target, 'utf8'))
          files.set(target, doc.$id)
          shared.push(rewrite(doc, path.dirname(target)))
        }
        out[k] = files.get(target) + '#' + (frag || '')
      } else {
        out[k] = rewrite(v, base)
      }
    }
    return out
  }
  const dir = path.dirname(file)
  const own = Object.entries(spec.components.schemas).map(([name, s]) => ({ $id: name, ...rewrite(s, dir) }))
  return shared.concat(own)
}

const RID_OK = /^[!-~]{1,128}$/
function genReqId (req) {
  const h = req.headers['x-request-id']
  if (typeof h === 'string' && RID_OK.test(h)) return h
  return crypto.randomUUID().replace(/-/g, '')
}

// ajv's violation as tablium reports it: JSON pointer into the request, rule, message.
const PART = { params: 'path', querystring: 'query', headers: 'header', body: 'body' }
function detail (context, e) {
  let p = '/' + (PART[context] || context) + e.instancePath
  let message = e.message
  switch (e.keyword) {
    case 'required':
      p += '/' + e.params.missingProperty.replace(/~/g, '~0').replace(/\//g, '~1')
      message = 'is required'
      break
    case 'additionalProperties':
      p += '/' + e.params.additionalProperty.replace(/~/g, '~0').replace(/\//g, '~1')
      message = 'is not allowed'
      break
    case 'enum':
      message = 'must be one of [' + e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ') + ']'
      break
    case 'pattern':
      message = 'must match pattern ' + e.params.pattern
      break
    case 'maxLength':
      message = 'must have at most ' + e.params.limit + ' characters'
      break
    case 'minLength':
      message = 'must have at least ' + e.params.limit + ' characters'
      break
  }
  return { path: p, rule: e.keyword, message }
}

function errorBody (request, code, message, details) {
  const error = { code, message, requestId: request.id }
  if (details) error.details = details
  return { error }
}

const app = Fastify({
  logger: false,
  requestIdHeader: false,
  genReqId,
  ajv: {
    customOptions: {
      removeAdditional: false,
      coerceTypes: false,
      allErrors: false,
      useDefaults: false,
      validateFormats: false
    }
  }
})

for (const s of loadSchemas(SPEC)) app.addSchema(s)
// Fastify parses text/plain too; only JSON bodies are accepted (415 otherwise), as in C.
app.removeContentTypeParser('text/plain')

app.setErrorHandler((err, request, reply) => {
  let status = 500
  let body
  if (err.validation) {
    status = 400
    body = errorBody(request, 'validation_failed', SCHEMA_MISMATCH,
      err.validation.map((e) => detail(err.validationContext, e)))
  } else if (err.statusCode === 415) {
    status = 415
    body = errorBody(request, 'unsupported_media_type', 'the request body must be application/json')
  } else if (err.statusCode === 413) {
    status = 413
    body = errorBody(request, 'payload_too_large', err.message)
  } else if (err.statusCode === 400) {
    status = 400
    body = errorBody(request, 'malformed_json', err.message) // FST_ERR_CTP_INVALID_JSON_BODY and co.
  } else {
    body = errorBody(request, 'internal', 'internal error')
  }
  reply.code(status).header('x-request-id', request.id).send(body)
})

app.setNotFoundHandler((request, reply) => {
  reply.code(404).header('x-request-id', request.id)
    .send(errorBody(request, 'not_found', 'no such resource'))
})

const params = {
  type: 'object',
  required: ['walletId'],
  properties: { walletId: { $ref: 'Uuid#' } },
  additionalProperties: false
}

app.post('/wallets/:walletId/transactions', {
  schema: {
    params,
    body: { $ref: 'CreateTransactionRequest#' },
    response: { 201: { $ref: 'TransactionResponse#' }, 400: { $ref: 'ErrorResponse#' } }
  }
}, (request, reply) => {
  const b = request.body
  const credit = b.type === 'credit'
  const data = {
    id: TX_ID,
    walletId: request.params.walletId,
    type: b.type,
    amount: b.amount,
    balanceAfter: credit ? BALANCE + b.amount : (b.amount <= BALANCE ? BALANCE - b.amount : 0),
    createdAt: CREATED_AT
  }
  if (b.reference !== undefined) data.reference = b.reference
  reply.code(201).header('x-request-id', request.id)
  return { data }
})

app.get('/wallets/:walletId', {
  schema: {
    params,
    response: { 200: { $ref: 'WalletResponse#' }, 400: { $ref: 'ErrorResponse#' } }
  }
}, (request, reply) => {
  reply.header('x-request-id', request.id)
  return {
    data: {
      id: request.params.walletId,
      userId: USER_ID,
      currency: 'CHP',
      balance: BALANCE,
      createdAt: CREATED_AT
    }
  }
})

const port = process.env.PORT === undefined || process.env.PORT === '' ? 8083 : Number(process.env.PORT)
app.listen({ port, host: process.env.HOST || '127.0.0.1' }).then(() => {
  process.stdout.write(`listening on ${app.server.address().port}\n`)
}, (err) => {
  process.stderr.write(`fastify: cannot listen: ${err.message}\n`)
  process.exit(1)
})

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.once(sig, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
