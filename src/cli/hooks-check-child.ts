/**
 * Run by `sluice -t` as a child process: imports the request-hooks module
 * as a listener thread would, and prints the outcome as one JSON line. A
 * child, so that the user's module, whatever it does when imported (a
 * timer, a hang, process.exit), cannot keep `-t` from answering.
 */
import { loadRequestHooks } from '../listener/request-hooks.ts';

try {
  await loadRequestHooks(process.argv[2]!);
  process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
  process.exit(0);
} catch (error) {
  // Whatever the module threw: an Error, or any value (`throw 'text'`, `throw null`).
  const err = error as Partial<NodeJS.ErrnoException> | null | undefined;
  const code = err?.code ?? err?.name ?? 'Error';
  const message = String(err?.message ?? error).split('\n')[0];
  process.stdout.write(`${JSON.stringify({ ok: false, code, message })}\n`);
  process.exit(1);
}
