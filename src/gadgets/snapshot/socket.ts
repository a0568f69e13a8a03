import type { GadgetDefinition } from '../../steps/types.ts';

/** TCP states (include/net/tcp_states.h); UDP uses ESTABLISHED (connected) and CLOSE (not). */
export const TCP_STATES: Readonly<Record<number, string>> = {
  1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT', 7: 'CLOSE',
  8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING', 12: 'NEW_SYN_RECV',
};

const ITERATORS = { tcp: ['socket_owners', 'snapshot_tcp'], udp: ['socket_owners', 'snapshot_udp'], all: ['socket_owners', 'snapshot_tcp', 'snapshot_udp'] };

export const snapshotSocket = {
  id: 'snapshot/socket',
  description: 'List the TCP and UDP sockets (IPv4 and IPv6) of a network namespace with their state, inode and owning process, from BPF iterators (iter/tcp, iter/udp, iter/task_file; Linux 5.9+)',
  mode: 'snapshot',
  object: 'snapshot_socket.bpf.o',
  struct: 'socket_entry',
  iterator: ITERATORS.all,
  iterators: (params) => ITERATORS[(params.proto as keyof typeof ITERATORS | undefined) ?? 'all'],
  netns: (params) => params.netns as string | undefined,
  fields: [
    { name: 'protocol', type: 'string', decode: 'enum', names: { 6: 'TCP', 17: 'UDP' }, description: 'TCP or UDP' },
    { name: 'saddr', type: 'string', decode: 'ipaddr', family: 'family', description: 'local address ("0.0.0.0", "::1")' },
    { name: 'sport', type: 'number', description: 'local port' },
    { name: 'daddr', type: 'string', decode: 'ipaddr', family: 'family', description: 'remote address (the any address when not connected)' },
    { name: 'dport', type: 'number', description: 'remote port (0 when not connected)' },
    { name: 'state', type: 'string', decode: 'enum', names: TCP_STATES, description: 'LISTEN, ESTABLISHED, TIME_WAIT, ... (UDP: ESTABLISHED when connected, CLOSE otherwise)' },
    { name: 'ipversion', type: 'number', description: '4 or 6' },
    { name: 'inode', type: 'number', description: 'the socket\'s inode (as in /proc/PID/fd: socket:[INODE]); 0 for TIME_WAIT and SYN_RECV entries' },
    { name: 'pid', type: 'number', description: 'a process holding the socket open (0 when none was found)' },
    { name: 'comm', type: 'string', description: 'that process\'s command name' },
    { name: 'uid', type: 'number', description: 'the socket\'s owner uid' },
    { name: 'netns', type: 'number', description: 'network namespace inode number' },
  ],
  kernelFilters: {},
  // one network namespace's sockets (params.netns), whoever holds them
  selects: 'none',
  requires: [{ iterator: 'tcp' }, { iterator: 'udp' }, { iterator: 'task_file' }],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      proto: { enum: ['all', 'tcp', 'udp'], default: 'all', description: 'which sockets: tcp, udp or all' },
      netns: { type: 'string', minLength: 1, description: 'the network namespace to list: a path such as /proc/PID/ns/net or /var/run/netns/NAME (default: ours)' },
    },
  },
} satisfies GadgetDefinition;
