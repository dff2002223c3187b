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
