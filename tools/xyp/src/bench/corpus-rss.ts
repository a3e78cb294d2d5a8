import { readFileSync } from 'node:fs';

/**
 * Peak resident set size of this process in MB: `VmHWM` from /proc/self/status on Linux, else
 * `process.resourceUsage().maxRSS`. (On Linux `maxRSS` survives `execve`, so a process spawned by
 * a large parent reports at least the parent's peak; `VmHWM` belongs to the new address space.)
 */
export function peakRssMb(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match !== null) return Number(match[1]) / 1024;
  } catch {
    // Not Linux: fall through.
  }
  return process.resourceUsage().maxRSS / 1024;
}
