import { Code, ConnectError, type Transport } from "@connectrpc/connect";

/** Set on a coordinator's errors when it is a standby; its value names the active coordinator's URL. */
export const ACTIVE_COORDINATOR_TRAILER = "x-autonomy-active-coordinator";
export const COORDINATOR_ROLE_TRAILER = "x-autonomy-coordinator-role";

/** How long a call keeps going round the servers while none takes it (a takeover in progress). */
const SEARCH_MS = 5_000;
const PAUSE_MS = 100;

/**
 * Whether a failed call should go to the next server: the server could not
 * be reached or dropped the call (a transport failure, never an answer), or
 * it is a standby coordinator that says where the active one is. A server's
 * own answer (a refusal, a precondition) is final and is returned as it is.
 */
export function goesElsewhere(err: unknown): { elsewhere: boolean; activeUrl?: string } {
  if (!(err instanceof ConnectError)) return { elsewhere: false };
  if (err.metadata.get(COORDINATOR_ROLE_TRAILER) === "standby") {
    return { elsewhere: true, activeUrl: err.metadata.get(ACTIVE_COORDINATOR_TRAILER) ?? undefined };
  }
  const cause = err.cause as { code?: unknown } | undefined;
  const transport = typeof cause?.code === "string" && /^E[A-Z]+$/.test(cause.code);
  const dropped = /ECONNRESET|ECONNREFUSED|socket hang up|RST_STREAM|stream closed|GOAWAY|premature close/i.test(err.rawMessage);
  const answered = err.code !== Code.Unavailable && err.code !== Code.Internal && err.code !== Code.Unknown && err.code !== Code.Canceled;
  return { elsewhere: transport || (dropped && !answered) };
}

/**
 * A transport over several servers of one tier (coordinators): each call goes
 * to the server that last answered, and moves on to the next, or to the
 * active coordinator a standby names, when that one cannot take it. Calls
 * carry the same headers wherever they go, so an admin request's idempotency
 * key makes a retry on the next server return the first result rather than
 * act twice. One server: the plain transport.
 */
export function failoverTransport(urls: readonly string[], make: (url: string) => Transport): Transport {
  if (urls.length === 1) return make(urls[0]!);
  const transports = urls.map(make);
  let preferred = 0;

  async function attempt<T>(signal: AbortSignal | undefined, call: (t: Transport) => Promise<T>): Promise<T> {
    const deadline = performance.now() + SEARCH_MS;
    let answer: unknown;
    let next = preferred;
    for (;;) {
      for (let tried = 0; tried < transports.length; tried++) {
        const i = next;
        next = (next + 1) % transports.length;
        try {
          const result = await call(transports[i]!);
          preferred = i;
          return result;
        } catch (err) {
          const where = goesElsewhere(err);
          if (!where.elsewhere || signal?.aborted) throw err;
          // A standby's error is the most useful one to show if nobody takes the call.
          if (where.activeUrl !== undefined || answer === undefined) answer = err;
          const named = where.activeUrl ? urls.indexOf(where.activeUrl) : -1;
          if (named >= 0 && named !== i) next = named;
        }
      }
      if (performance.now() >= deadline) throw answer;
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    }
  }

  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      attempt(signal, (t) => t.unary(method, signal, timeoutMs, header, input, contextValues)),
    // A server stream (one request) is retried until it is established; its
    // messages are the caller's to resume. Other streams stay where they start.
    stream: async (method, signal, timeoutMs, header, input, contextValues) => {
      if (method.methodKind !== "server_streaming") return transports[preferred]!.stream(method, signal, timeoutMs, header, input, contextValues);
      const requests: typeof input extends AsyncIterable<infer M> ? M[] : never = [];
      for await (const m of input) requests.push(m);
      return attempt(signal, (t) => t.stream(method, signal, timeoutMs, header, replay(requests), contextValues));
    },
  };
}

async function* replay<M>(messages: readonly M[]): AsyncIterable<M> {
  yield* messages;
}
