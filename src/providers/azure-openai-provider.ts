import { AzureOpenAI } from 'openai';
import { OpenAiProvider } from './openai-provider.js';

export interface AzureOpenAiProviderOptions {
  id: string;
  /** The resource endpoint, e.g. `https://my-resource.openai.azure.com`. */
  endpoint: string;
  apiVersion: string;
  /** The deployment the requests go to (`/openai/deployments/{deployment}/...`). */
  deployment: string;
  apiKey: string;
  /** The model behind the deployment, for pricing and reports; default the deployment name. */
  model?: string;
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
}

/**
 * Azure OpenAI: the same wire format as OpenAI, through the SDK's `AzureOpenAI` client, which
 * routes to the deployment's path, adds `api-version` and sends the key as `api-key`.
 * `probe` lists the resource's models (`/openai/models`), proving endpoint, key and api-version.
 */
export class AzureOpenAiProvider extends OpenAiProvider {
  override readonly kind = 'azure-openai' as const;
  readonly deployment: string;

  constructor(options: AzureOpenAiProviderOptions) {
    super(
      { id: options.id, model: options.model ?? options.deployment, timeoutMs: options.timeoutMs },
      new AzureOpenAI({
        endpoint: options.endpoint,
        apiVersion: options.apiVersion,
        deployment: options.deployment,
        apiKey: options.apiKey,
        maxRetries: 0,
        timeout: options.timeoutMs,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
    );
    this.deployment = options.deployment;
  }
}
