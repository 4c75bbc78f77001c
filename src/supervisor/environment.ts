/** The environment variables sluice hands to the processes it starts: read once there, then removed. */

/**
 * Removes a variable from an environment. Assigning undefined to process.env
 * would store the string "undefined", so the key itself must go.
 */
export function unsetEnv(env: NodeJS.ProcessEnv, name: string): void {
  Reflect.deleteProperty(env, name);
}
