/** The bench's hook module that does nothing: what the hook machinery itself costs per request. */
export function onRequestStart(): void {}
export function onRequestEnd(): void {}
