/** The bench's hook module that does nothing: what the hook machinery itself costs per request. */
export function onRequestStart(): void {
  // nothing: the cost measured is that of being called
}
export function onRequestEnd(): void {
  // nothing, as above
}
