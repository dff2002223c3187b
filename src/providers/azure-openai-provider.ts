import { AzureOpenAI } from 'openai';
import { OpenAiProvider, rebuildOnKeyChange } from './openai-provider.js';

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
  /**
   * The current key (Vault); when it returns another key, the SDK client is rebuilt with it
   * before the next request. Undefined: `apiKey`.
   */
  getApiKey?: () => string | undefined;
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
    const build = (apiKey: string) =>
      new AzureOpenAI({
        endpoint: options.endpoint,
        apiVersion: options.apiVersion,
        deployment: options.deployment,
        apiKey,
        maxRetries: 0,
        timeout: options.timeoutMs,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
    const { getApiKey } = options;
    super(
      { id: options.id, model: options.model ?? options.deployment, timeoutMs: options.timeoutMs },
      // AzureOpenAI takes only a fixed key: with a getter, a new key gets a new client.
      getApiKey ? rebuildOnKeyChange(() => getApiKey() ?? options.apiKey, build) : build(options.apiKey),
    );
    this.deployment = options.deployment;
  }
}
