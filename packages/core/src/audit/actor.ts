/**
 * Who acts: an admin at the CLI, a customer in the portal, vome itself
 * (maintenance, the worker), or an operator under a customer's support grant.
 */
export interface Actor {
  kind: 'admin' | 'customer' | 'system' | 'support';
  /** Admin login, account id, job name or grant id. */
  id: string;
  /** The network address the request came from, when there is one. */
  sourceAddress?: string;
}

/** Formats an actor as "kind:id", the form stored on operations. */
export function actorLabel(actor: Actor): string {
  return `${actor.kind}:${actor.id}`;
}
