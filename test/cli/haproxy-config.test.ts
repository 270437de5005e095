import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderHaproxyConfig, type HaproxyConfigOptions } from '../../src/cli/haproxy-config';

/** Run the real `haproxy -c` on a rendered config; returns its exit status and output. */
function checkWithHaproxy(config: string): { status: number | null; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-haproxy-'));
  try {
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, config);
    const result = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    if (result.error) {
      throw new Error(`cannot run haproxy (apt-get install haproxy): ${result.error.message}`);
    }
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const threeMembers: HaproxyConfigOptions = {
  bindGrpc: '127.0.0.1:5000',
  statsBind: '127.0.0.1:8404',
  members: [
    { id: 'n1', grpc: '127.0.0.1:5001', http: '127.0.0.1:6001' },
    { id: 'n2', grpc: '127.0.0.1:5002', http: '127.0.0.1:6002' },
    { id: 'n3', grpc: '127.0.0.1:5003', http: '127.0.0.1:6003' },
  ],
};

test('three-member config passes haproxy -c', () => {
  const result = checkWithHaproxy(renderHaproxyConfig(threeMembers));
  assert.is(result.status, 0, result.output);
  assert.ok(result.output.includes('Configuration file is valid'), result.output);
});

test('servers speak h2 and check /healthz over h1', () => {
  const config = renderHaproxyConfig(threeMembers);
  assert.ok(config.includes('    bind 127.0.0.1:5000 proto h2\n'), config);
  assert.ok(config.includes('    balance roundrobin\n'), config);
  assert.ok(config.includes('    option httpchk GET /healthz\n'), config);
  assert.ok(config.includes('    server n2 127.0.0.1:5002 proto h2 check port 6002 check-proto h1\n'), config);
  assert.ok(config.includes('    bind 127.0.0.1:8404\n'), config);
});

test('one client connection may carry 1000 calls', () => {
  const config = renderHaproxyConfig(threeMembers);
  assert.ok(config.includes('    tune.h2.max-concurrent-streams 1000\n'), config);
});

/** Returns a port on 127.0.0.1 that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a second HAProxy on the same port fails to start', async () => {
  const port = await freePort();
  const config = renderHaproxyConfig({ ...threeMembers, bindGrpc: `127.0.0.1:${port}`, statsBind: undefined });
  assert.ok(config.includes('    noreuseport\n'), config);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-haproxy-'));
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, config);
  const first = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.is(first.exitCode, null, 'the first HAProxy runs');
    const second = spawnSync('haproxy', ['-db', '-f', file], { encoding: 'utf8', timeout: 5000 });
    assert.is.not(second.status, 0, 'the second HAProxy exits with an error');
    assert.match(`${second.stdout}${second.stderr}`, /cannot bind socket \(Address already in use\)/);
  } finally {
    first.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('config without stats has no stats section', () => {
  const { statsBind: _omitted, ...withoutStats } = threeMembers;
  const config = renderHaproxyConfig(withoutStats);
  assert.not.ok(config.includes('stats enable'), config);
  const result = checkWithHaproxy(config);
  assert.is(result.status, 0, result.output);
});

test('IPv6, wildcard and split hosts pass haproxy -c', () => {
  const config = renderHaproxyConfig({
    bindGrpc: '[::1]:5000',
    members: [
      { id: 'n1', grpc: '[::1]:5001', http: '[::1]:6001' },
      { id: 'n2', grpc: '0.0.0.0:5002', http: '0.0.0.0:6002' },
      { id: 'member-3', grpc: '127.0.0.2:5003', http: '127.0.0.3:6003' },
    ],
  });
  assert.ok(config.includes('server n1 ipv6@::1:5001 proto h2 check port 6001'), config);
  assert.ok(config.includes('server n2 127.0.0.1:5002 proto h2 check port 6002'), config);
  assert.ok(config.includes('server member-3 127.0.0.2:5003 proto h2 check addr 127.0.0.3 port 6003'), config);
  const result = checkWithHaproxy(config);
  assert.is(result.status, 0, result.output);
});

test('invalid member id and address are rejected', () => {
  const member = { id: 'n1', grpc: '127.0.0.1:5001', http: '127.0.0.1:6001' };
  assert.throws(() => renderHaproxyConfig({ bindGrpc: '127.0.0.1:5000', members: [] }), /members is empty/);
  assert.throws(
    () => renderHaproxyConfig({ bindGrpc: '127.0.0.1:5000', members: [{ ...member, id: 'N 1' }] }),
    /invalid member id "N 1"/,
  );
  assert.throws(
    () => renderHaproxyConfig({ bindGrpc: '127.0.0.1:5000', members: [{ ...member, http: 'nohost' }] }),
    /invalid address "nohost"/,
  );
  assert.throws(() => renderHaproxyConfig({ bindGrpc: '5000', members: [member] }), /invalid address "5000"/);
});

test('docker haproxy.cfg passes haproxy -c', () => {
  // From dist/test/cli/ back to the repository root.
  const file = path.join(__dirname, '../../../docker/haproxy.cfg');
  const result = checkWithHaproxy(fs.readFileSync(file, 'utf8'));
  assert.is(result.status, 0, result.output);
  assert.ok(result.output.includes('Configuration file is valid'), result.output);
});

test.run();
