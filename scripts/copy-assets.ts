/** Part of `npm run build`: the dashboard's static files go beside the compiled admin server. */
import { cpSync } from 'node:fs';

cpSync(new URL('../src/admin/dashboard/', import.meta.url), new URL('../dist/admin/dashboard/', import.meta.url), {
  recursive: true,
});
