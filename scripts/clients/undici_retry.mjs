// Node's undici RetryAgent, configured as its documentation shows, against one URL.
// Usage: node undici_retry.mjs METHOD URL [BODY]; prints {"status": N} or {"error": "..."}.
import { Agent, RetryAgent, request } from 'undici'

const [method, url, body] = process.argv.slice(2)
const dispatcher = new RetryAgent(new Agent(), { maxRetries: 3, minTimeout: 200, timeoutFactor: 2 })
try {
  const res = await request(url, { method, body, dispatcher, headersTimeout: 20000, bodyTimeout: 20000 })
  await res.body.text()
  console.log(JSON.stringify({ status: res.statusCode }))
} catch (e) {
  console.log(JSON.stringify({ error: `${e.code ?? e.name}: ${e.message}`, status: e.statusCode ?? null }))
}
process.exit(0)
