/** What the socket gadgets (trace/bind, trace/tcp, trace/tcpconnect) share: fields described once, hooks. */
import { errNameOfRet as errNameOfRetField } from './common-fields.ts';
import type { FieldSpec, Requirement } from '../steps/types.ts';

export const netField = {
  ipversion: { name: 'ipversion', type: 'number', description: 'IP version of the socket: 4 or 6' },
  saddr: { name: 'saddr', type: 'string', decode: 'ipaddr', family: 'family', description: 'local address ("127.0.0.1", "::1")' },
  daddr: { name: 'daddr', type: 'string', decode: 'ipaddr', family: 'family', description: 'remote address' },
  sport: { name: 'sport', type: 'number', description: 'local port' },
  dport: { name: 'dport', type: 'number', description: 'remote port' },
} satisfies Record<string, FieldSpec>;

/** err_name of a field `ret` that is 0 (or a count) on success and -errno on failure. */
export const errNameOfRet: FieldSpec = errNameOfRetField('the errno\'s name when ret < 0 (ECONNREFUSED), "" otherwise');

/** What connect tracking needs (bpf/include/tcp_owner.h): the syscall names the task, the state change the outcome. */
export const CONNECT_HOOKS: Requirement[] = [
  { tracepoint: 'syscalls/sys_enter_connect' },
  { tracepoint: 'syscalls/sys_exit_connect' },
  { tracepoint: 'sock/inet_sock_set_state' },
];
