/**
 * The two things an actor link does nothing for, named for why: the channel
 * to the machine before the machine invokes the link, and the cleanup xstate
 * runs when the machine's actor ends.
 */

/** A link's channel back to the machine until the machine invokes it. */
export function beforeInvoke(): void {
  // The link starts its thread from inside the invoke, so nothing can report before there is a machine to tell.
}

/** The cleanup of a link's machine actor. */
export function stoppedBySupervisor(): void {
  // The threads outlive the machine's actors: the runtime's stopAll ends them, in the shutdown's order.
}
