/**
 * The `btf` option of run(), gadgets(), gadget() and stream() (the CLI's --btf): this kernel's
 * vmlinux BTF from a file, for a kernel without /sys/kernel/btf/vmlinux; without it, the file
 * already in use, else $GADGET_RUN_BTF. The kernel is the process's, so the file is too: the first one given serves
 * every later call, and another file is an OptionError (one process, one kernel, one BTF).
 */
import path from 'node:path';
import { BtfFileError, btfFileInUse, useBtfFile } from '../ebpf/kernel-btf.ts';
import { OptionError } from '../runner/errors.ts';

/** Use `file` (else $GADGET_RUN_BTF) as this kernel's BTF; checked now: an OptionError says why not. */
export function useBtfOption(file: string | undefined, option = 'btf'): void {
  if (file === undefined && btfFileInUse()) return;
  const given = file ?? process.env.GADGET_RUN_BTF;
  if (!given) return;
  const from = file !== undefined ? option : 'GADGET_RUN_BTF';
  const abs = path.resolve(given);
  const inUse = btfFileInUse();
  if (inUse === abs) return;
  if (inUse) throw new OptionError(from, `${given}: this process already uses ${inUse} as the kernel's BTF (one kernel, one BTF per process)`);
  try {
    useBtfFile(abs, from);
  } catch (err) {
    if (err instanceof BtfFileError) throw new OptionError(from, `${given}: ${err.message}`);
    throw err;
  }
}
