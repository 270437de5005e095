import { parseHostPort, parseHostPortList } from '../client/target';
import { memberIdPattern } from '../node/config';
import { formatVerifyResult } from '../verify/format';
import { verifyCluster, verifyDefaults, type VerifyTarget } from '../verify/verify-cluster';
import { fingerprintMembersMax } from '../verify/fingerprint-table';
import {
  FlagError,
  parseFlags,
  parseIntegerFlag,
  processIo,
  runCommand,
  withFlagName,
  type CliIo,
} from './client-flags';
import { interruptedExitCode, watchInterrupt } from './interrupt';
import { parseHttpAddress, parseHttpAddressList } from './status-fetch';

const retriesMax = 100;

export const verifyHelp = `Usage: replog verify --target GRPC[,GRPC...] --http HTTP[,HTTP...] [flags]
       replog verify --members ID=GRPC=HTTP[,ID=GRPC=HTTP...] [flags]

Check that every member stores the same messages. For each member, straight
from that member (never through a load balancer): fetch GET /status, read
every message with Read (from 0, no limit, no follow), fetch /status again.
It recomputes the digest of the contract over the messages read (32 zero
bytes, then d = SHA-256(d || index as 8-byte big-endian || valueset)) and
compares it and the message count with the member's /status, compares the
members index by index (same index, same valueset), and looks for a valueset
stored twice by one member. Members are read in lockstep, so memory does not
grow with the messages (except about 40 bytes per message for the duplicate
check).

  --target GRPC[,...]     every member's gRPC address, HOST:PORT
  --http HTTP[,...]       every member's HTTP address, HOST:PORT or
                          http://HOST:PORT[/status], in the same order
  --members ID=GRPC=HTTP[,...]
                          the same as one list, with names for the report
                          (instead of --target and --http)
  --retries N             attempts after the first while the cluster is not
                          quiescent (default ${verifyDefaults.retries}), one second apart
  --allow-busy            exit 0 when the common applied prefix agrees even if
                          the cluster never became quiescent
  --json                  print the whole result as one JSON object
  -h, --help              show this help

Quiescent means: every member's applied index is the same before and after
its read, and the same on every member. While the cluster applies entries,
verify waits and tries again (--retries). What it checks stays sound anyway:
a member's digest and count are checked over the messages up to the applied
index its /status reported before the read (a Read started later returns all
of them), and the members are compared up to the smallest of those indexes
(the common applied prefix). Without --allow-busy a cluster that never became
quiescent fails, because later indexes were not compared.

Exit status: 0 when all members agree, 1 when any member differs, is down or
the cluster never became quiescent, 2 for invalid flags, 130 when interrupted.
`;

export interface VerifyFlags {
  readonly targets: readonly VerifyTarget[];
  readonly retries: number;
  readonly allowBusy: boolean;
  readonly json: boolean;
}

const membersForm = 'expected ID=GRPC_HOST:PORT=HTTP_HOST:PORT[,ID=GRPC_HOST:PORT=HTTP_HOST:PORT...]';

function parseMembersFlag(text: string): VerifyTarget[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw new FlagError(`invalid --members "${text}": ${membersForm}`);
  const targets = parts.map((part): VerifyTarget => {
    const fields = part.split('=');
    if (fields.length !== 3 || !memberIdPattern.test(fields[0]!)) {
      throw new FlagError(`invalid --members entry "${part}": ${membersForm}, ID matching [a-z0-9-]{1,32}`);
    }
    const grpc = withFlagName('members', () => parseHostPort(fields[1]!));
    const http = withFlagName('members', () => parseHttpAddress(fields[2]!));
    return { id: fields[0]!, grpc: `${grpc.host}:${grpc.port}`, http };
  });
  const ids = targets.map((t) => t.id);
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
  if (repeated !== undefined) throw new FlagError(`invalid --members: member id "${repeated}" appears twice`);
  return targets;
}

/** Parse and check the flags; returns null for `--help`. Throws FlagError. */
export function parseVerifyFlags(argv: readonly string[]): VerifyFlags | null {
  const values = parseFlags(argv, {
    target: { type: 'string' },
    http: { type: 'string' },
    members: { type: 'string' },
    retries: { type: 'string' },
    'allow-busy': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return null;
  let targets: VerifyTarget[];
  if (values.members !== undefined) {
    if (values.target !== undefined || values.http !== undefined) {
      throw new FlagError('invalid --members with --target or --http: give either --members or both --target and --http');
    }
    targets = parseMembersFlag(values.members);
  } else {
    if (values.target === undefined) throw new FlagError('missing --target: expected GRPC_HOST:PORT[,...], one per member (or use --members)');
    if (values.http === undefined) throw new FlagError('missing --http: expected HTTP_HOST:PORT[,...], one per member, in --target order');
    const grpc = withFlagName('target', () => parseHostPortList(values.target!));
    const http = withFlagName('http', () => parseHttpAddressList(values.http!));
    if (grpc.length !== http.length) {
      throw new FlagError(
        `invalid --http: ${http.length} address(es) for ${grpc.length} --target address(es); ` +
          'expected one HTTP address per member, in the same order',
      );
    }
    targets = grpc.map((g, k) => ({ id: null, grpc: `${g.host}:${g.port}`, http: http[k]! }));
  }
  if (targets.length > fingerprintMembersMax) {
    throw new FlagError(`invalid member list: ${targets.length} members; expected at most ${fingerprintMembersMax}`);
  }
  return {
    targets,
    retries: parseIntegerFlag('retries', values.retries, verifyDefaults.retries, 0, retriesMax),
    allowBusy: values['allow-busy'] ?? false,
    json: values.json ?? false,
  };
}

/** `replog verify`: returns the exit status. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCommand('replog verify', io, async () => {
    const flags = parseVerifyFlags(argv);
    if (flags === null) {
      io.stdout.write(verifyHelp);
      return 0;
    }
    const interrupt = watchInterrupt();
    try {
      const result = await verifyCluster(flags.targets, {
        retries: flags.retries,
        retryDelayMs: verifyDefaults.retryDelayMs,
        allowBusy: flags.allowBusy,
        signal: interrupt.signal,
      });
      io.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatVerifyResult(result));
      return result.ok ? 0 : 1;
    } catch (error) {
      if (interrupt.signal.aborted) {
        io.stderr.write('replog verify: interrupted\n');
        return interruptedExitCode;
      }
      throw error;
    } finally {
      interrupt.dispose();
    }
  });
}
