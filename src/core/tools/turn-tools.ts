import type { ToolCall, ToolDefinition } from '../../providers/provider.js';

/** Who a tool runs for: the person in the conversation, as their channel identified them. */
export interface ToolContext {
  personId: string;
  channel: string;
  userId: string;
}

/**
 * Tools the model may call during an agent turn. A tool's answer goes back to the model as
 * text; the tool itself decides what it permits, since the model's arguments are untrusted.
 */
export interface TurnTools {
  definitions: ToolDefinition[];
  run(call: ToolCall, context: ToolContext): Promise<string>;
}

/** Several tool sets as one; a call goes to the set that defines its name. */
export function combineTools(sets: readonly TurnTools[]): TurnTools | undefined {
  if (sets.length === 0) return undefined;
  const owner = new Map<string, TurnTools>();
  for (const set of sets) for (const d of set.definitions) owner.set(d.name, set);
  return {
    definitions: sets.flatMap((s) => s.definitions),
    run: (call, context) => {
      const set = owner.get(call.name);
      return set
        ? set.run(call, context)
        : Promise.resolve(JSON.stringify({ error: `no tool named ${call.name}` }));
    },
  };
}
