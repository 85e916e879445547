import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import {
  clientAddress,
  compileNetworks,
  displayAddress,
  inNetworks,
  parseAddress,
  parseNetwork,
} from '../../src/core/networks.ts';

const allowed = (addr: string, ...nets: string[]) => inNetworks(addr, compileNetworks(nets));

describe('source networks: matching', () => {
  it('matches IPv4 addresses against IPv4 networks and single addresses', () => {
    expect(allowed('127.0.0.2', '127.0.0.2/32')).toBe(true);
    expect(allowed('127.0.0.3', '127.0.0.2/32')).toBe(false);
    expect(allowed('10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(allowed('11.0.0.1', '10.0.0.0/8')).toBe(false);
    expect(allowed('192.168.1.200', '192.168.1.128/25')).toBe(true);
    expect(allowed('192.168.1.127', '192.168.1.128/25')).toBe(false);
    expect(allowed('192.0.2.7', '192.0.2.7')).toBe(true);
    expect(allowed('203.0.113.9', '0.0.0.0/0')).toBe(true);
    expect(allowed('203.0.113.9')).toBe(false);
  });

  it('matches IPv6 addresses, in every spelling', () => {
    expect(allowed('2001:db8::1', '2001:db8::/32')).toBe(true);
    expect(allowed('2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::/32')).toBe(true);
    expect(allowed('2001:db9::1', '2001:db8::/32')).toBe(false);
    expect(allowed('::1', '::1/128')).toBe(true);
    expect(allowed('::2', '::1')).toBe(false);
    expect(allowed('fe80::1%eth0', 'fe80::/10')).toBe(true);
    expect(allowed('2001:DB8:0:0:8:800:200C:417A', '2001:db8:0:0:8::/80')).toBe(true);
  });

  it('treats an IPv4-mapped IPv6 address as the IPv4 address it is', () => {
    expect(allowed('::ffff:127.0.0.2', '127.0.0.2/32')).toBe(true);
    expect(allowed('::ffff:127.0.0.3', '127.0.0.2/32')).toBe(false);
    expect(allowed('::FFFF:7f00:2', '127.0.0.0/8')).toBe(true);
    expect(allowed('127.0.0.2', '::ffff:127.0.0.0/104')).toBe(true);
    expect(allowed('10.0.0.1', '::/0')).toBe(true);
    // Not mapped: another address that happens to end in the same 32 bits.
    expect(allowed('::127.0.0.2', '127.0.0.2/32')).toBe(false);
    expect(allowed('64:ff9b::127.0.0.2', '127.0.0.2/32')).toBe(false);
    expect(displayAddress('::ffff:127.0.0.3')).toBe('127.0.0.3');
    expect(displayAddress('2001:db8::1')).toBe('2001:db8::1');
  });

  it('puts nothing that is not an address in any network', () => {
    for (const a of [
      '',
      'unknown',
      '127.0.0',
      '127.0.0.256',
      '1.2.3.4.5',
      '::ffff:1.2.3',
      'g::1',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      '010.0.0.1',
    ]) {
      expect(parseAddress(a), a).toBeNull();
      expect(allowed(a, '0.0.0.0/0', '::/0'), a).toBe(false);
    }
  });
});

describe('source networks: the configuration', () => {
  it('says why an entry is malformed', () => {
    const why = (t: string) => {
      const r = parseNetwork(t);
      return r.ok ? 'ok' : r.why;
    };
    expect(why('10.0.0.0/8')).toBe('ok');
    expect(why('2001:db8::/32')).toBe('ok');
    expect(why('10.0.0.0/33')).toMatch(/prefix length must be a number from 0 to 32/);
    expect(why('2001:db8::/129')).toMatch(/from 0 to 128/);
    expect(why('10.0.0/8')).toMatch(/neither an IPv4 nor an IPv6 address/);
    expect(why('example.org')).toMatch(/neither/);
    expect(why('10.0.0.0/8/9')).toMatch(/more than one/);
    expect(why('10.0.0.0/x')).toMatch(/prefix length/);
    expect(why('10.1.0.0/8')).toMatch(/bits set after the prefix \(the network is 10\.0\.0\.0\/8\)/);
    expect(why('2001:db8::1/32')).toMatch(/the network is 2001:db8::\/32/);
    expect(why('fe80::1%eth0')).toMatch(/neither/);
    expect(() => compileNetworks(['127.0.0.1', 'nope'])).toThrow(/"nope"/);
  });

  it('names the key and line of each malformed entry in the config check', () => {
    const text = [
      'server:',
      '  trustProxy: ["127.0.0.2", "10.0.0.1/8"]',
      'sourceNetworks:',
      '  allow: ["127.0.0.2/32", "10.0.0.0/33"]',
      'clusters:',
      '  - name: a',
      '    backend: local',
      '    sourceNetworks:',
      '      allow: ["fe80::/10", "nope"]',
    ].join('\n');
    let err: unknown;
    try {
      parseConfig(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.map((p) => `${p.key}@${p.line}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'sourceNetworks.allow[1]@4',
        'server.trustProxy[1]@2',
        'clusters[0].sourceNetworks.allow[1]@9',
      ]),
    );
    const ok = parseConfig('server:\n  trustProxy: true\nsourceNetworks:\n  allow: ["::1", "127.0.0.0/8"]\n');
    expect(ok.sourceNetworks.allow).toEqual(['::1', '127.0.0.0/8']);
    expect(ok.sourceNetworks.message).toMatch(/networks of the site/);
  });
});

describe('source networks: the client address behind a trusted proxy', () => {
  const proxies = compileNetworks(['127.0.0.2/32', '10.0.0.0/8']);
  const trusted = (a: string) => inNetworks(a, proxies);

  it('takes X-Forwarded-For only from a trusted peer', () => {
    expect(clientAddress('127.0.0.3', '192.0.2.1', trusted)).toBe('127.0.0.3');
    expect(clientAddress('127.0.0.2', '192.0.2.1', trusted)).toBe('192.0.2.1');
    expect(clientAddress('::ffff:127.0.0.2', '192.0.2.1', trusted)).toBe('192.0.2.1');
    expect(clientAddress('127.0.0.2', undefined, trusted)).toBe('127.0.0.2');
  });

  it('walks the hops from the right and stops at the first untrusted one', () => {
    // The client wrote 127.0.0.9 itself; the trusted proxies appended 192.0.2.1 and 10.1.1.1.
    expect(clientAddress('127.0.0.2', '127.0.0.9, 192.0.2.1, 10.1.1.1', trusted)).toBe('192.0.2.1');
    expect(clientAddress('127.0.0.2', '10.0.0.5,10.0.0.6', trusted)).toBe('10.0.0.5');
    expect(clientAddress('127.0.0.2', ' , ', trusted)).toBe('127.0.0.2');
    expect(clientAddress('127.0.0.2', 'garbage', trusted)).toBe('garbage');
    expect(clientAddress('127.0.0.2', '1.1.1.1, 2.2.2.2', () => true)).toBe('1.1.1.1');
  });
});
