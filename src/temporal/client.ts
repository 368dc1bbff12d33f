import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { Client, Connection, type ConnectionOptions, defaultGrpcRetryOptions, isGrpcServiceError, makeGrpcRetryInterceptor, type TLSConfig } from '@temporalio/client';
import type { Config, TemporalClientSecurity } from '../config';
import { DomainError } from '../errors';


/**
 * The SDK's TLS settings from TEMPORAL_TLS_*: undefined for plaintext, the CA,
 * client certificate and server name as given otherwise. An API key alone
 * (Temporal Cloud) turns TLS on with the system's CAs, as the SDK does.
 */
export function temporalTls(security: TemporalClientSecurity): TLSConfig | undefined {
  const tls = security.tls;
  if (!tls) return security.apiKey !== undefined ? {} : undefined;
  return {
    ...(tls.serverName !== undefined ? { serverNameOverride: tls.serverName } : {}),
    ...(tls.ca ? { serverRootCACertificate: tls.ca.pem } : {}),
    ...(tls.cert && tls.key ? { clientCertPair: { crt: tls.cert.pem, key: tls.key.pem } } : {}),
  };
}

/** Address, TLS and API key of a connection to the configured frontend (Connection and NativeConnection alike). */
export function temporalConnectionOptions(config: Config, address = config.temporal.address): { address: string; tls?: TLSConfig; apiKey?: string } {
  const tls = temporalTls(config.temporal.security);
  return {
    address,
    ...(tls !== undefined ? { tls } : {}),
    ...(config.temporal.security.apiKey !== undefined ? { apiKey: config.temporal.security.apiKey } : {}),
  };
}

/**
 * Calls a client waits on for a long time by design: long polls and the
 * update calls that wait for a workflow's answer. Every other call gets the
 * default deadline below.
 */
const LONG_CALLS = /\/(GetWorkflowExecutionHistory|PollWorkflowExecutionUpdate|UpdateWorkflowExecution|ExecuteMultiOperation|Poll\w+)$/;

/** How long an API call to Temporal may take when its caller set no deadline of its own. */
export const DEFAULT_CALL_DEADLINE_MS = 5000;

/**
 * Gives every call without a deadline one of DEFAULT_CALL_DEADLINE_MS. The
 * SDK's retry interceptor retries an unreachable frontend for many seconds;
 * with an absolute deadline on the call, its retries end with it, so a status
 * read while Temporal restarts fails within seconds instead of hanging.
 */
export function deadlineInterceptor(ms: number): Interceptor {
  return (options, nextCall) => {
    const method = options.method_definition.path;
    if (options.deadline !== undefined || LONG_CALLS.test(method)) return new InterceptingCall(nextCall(options));
    return new InterceptingCall(nextCall({ ...options, deadline: Date.now() + ms }));
  };
}

/**
 * The API's retries: an unreachable frontend a few quick times (a dropped
 * connection re-dialled), then the error, which the API answers with 503;
 * rate limiting (RESOURCE_EXHAUSTED) as the SDK retries it, within the call's
 * deadline.
 */
const sdkRetries = defaultGrpcRetryOptions();
const RESOURCE_EXHAUSTED = 8;
const apiRetryInterceptor = makeGrpcRetryInterceptor({
  delayFunction: (attempt, status) => (status.code === RESOURCE_EXHAUSTED ? sdkRetries.delayFunction(attempt, status) : Math.min(1000, 100 * 2 ** attempt)),
  retryableDecider: (attempt, status) => (status.code === RESOURCE_EXHAUSTED || attempt < 4) && sdkRetries.retryableDecider(attempt, status),
});

/** Opens a connection to the Temporal frontend of the configuration and a client on it. */
export async function connectClient(config: Config, options: Pick<ConnectionOptions, 'interceptors'> = {}): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ ...temporalConnectionOptions(config), ...options });
  return { client: new Client({ connection, namespace: config.temporal.namespace }), connection };
}

/**
 * The API's connection: every call bounded (DEFAULT_CALL_DEADLINE_MS unless
 * the call sets its own), retried briefly, so that requests answer 503 while
 * Temporal is away (see temporalUnavailable).
 */
export async function connectApiClient(config: Config): Promise<{ client: Client; connection: Connection }> {
  return connectClient(config, { interceptors: [deadlineInterceptor(DEFAULT_CALL_DEADLINE_MS), apiRetryInterceptor] });
}

/** gRPC codes that mean "Temporal is not answering now": UNAVAILABLE and DEADLINE_EXCEEDED. */
const UNREACHABLE_CODES = new Set([14, 4]);

/**
 * The API's answer to an error from a call to Temporal that did not reach it
 * or did not come back in time: 503 UNAVAILABLE. Undefined for any other error.
 */
export function temporalUnavailable(error: unknown): DomainError | undefined {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (isGrpcServiceError(current) && UNREACHABLE_CODES.has(current.code)) {
      return new DomainError('UNAVAILABLE', 503, 'Temporal is not answering at the moment; try again shortly');
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
