// The relay handshake: how the gateway and an agent's relay (src/agent/relay.ts) prove to each other that
// they know the app's relay secret before any byte of the user's passes. Both sides import this file
// (the agent's bundle too: Node built-ins only). Every message has a fixed length and ends with "\n":
//
//   gateway → relay   "ATRIUM-RELAY1 <nonceG>\n"           (58 bytes)
//   relay → gateway   "<nonceR> <macR>\n"                   (88 bytes)
//   gateway → relay   "<macG>\n"                            (44 bytes), then the connection's raw bytes
//
// nonces are 32 random bytes and MACs HMAC-SHA256 under the secret, all unpadded base64url (43 chars):
// macR = HMAC(secret, "atrium-relay1|relay|" nonceG "|" nonceR), macG the same with "gateway" and the
// nonces swapped. The relay proves first, over the gateway's fresh nonce: whoever holds the port
// without the secret (a user who bound it after the agent died) gets the opening line and nothing else.
// The gateway proves second, over the relay's fresh nonce, so a recorded exchange cannot be replayed to
// the relay, and the roles' labels keep either side's answer from serving as the other's.
import crypto from 'node:crypto';

export const RELAY_HELLO = 'ATRIUM-RELAY1 ';
const B64_LEN = 43;
/** "ATRIUM-RELAY1 <nonceG>\n" */
export const HELLO_LEN = RELAY_HELLO.length + B64_LEN + 1;
/** "<nonceR> <macR>\n" */
export const CHALLENGE_LEN = B64_LEN + 1 + B64_LEN + 1;
/** "<macG>\n" */
export const PROOF_LEN = B64_LEN + 1;
/** How long either side waits for the other's part of the handshake. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

const B64 = /^[A-Za-z0-9_-]{43}$/;

export function newNonce(): string {
  return crypto.randomBytes(32).toString('base64url');
}

export function isNonce(s: string): boolean {
  return B64.test(s);
}

/** What one side sends to prove it knows the secret: over its peer's nonce first, then its own. */
export function relayMac(
  secret: string,
  role: 'relay' | 'gateway',
  peerNonce: string,
  ownNonce: string,
): string {
  return crypto
    .createHmac('sha256', secret)
    .update(`atrium-relay1|${role}|${peerNonce}|${ownNonce}`)
    .digest('base64url');
}

/** Constant-time comparison of a received MAC with the expected one. */
export function macMatches(received: Buffer, expected: string): boolean {
  const e = Buffer.from(expected, 'latin1');
  return received.length === e.length && crypto.timingSafeEqual(received, e);
}
