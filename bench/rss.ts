import { readdirSync, readFileSync } from 'node:fs';

/** RSS in MB of a process and its descendants (nginx: master and workers; sluice: one process, all threads). */
export function treeRss(pid: number): number {
  let total = 0;
  const visit = (id: number) => {
    try {
      total += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${id}/status`, 'utf8'))?.[1] ?? 0);
      for (const task of readdirSync(`/proc/${id}/task`)) {
        for (const child of readFileSync(`/proc/${id}/task/${task}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter(Boolean))
          visit(Number(child));
      }
    } catch {
      // The process or thread exited while being read: it holds no memory any more.
    }
  };
  visit(pid);
  return total / 1024;
}
