import type { Config } from '../config/schema.ts';

export type ProxyConfig = Config['proxy'];
