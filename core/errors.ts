/**
 * One error type for the whole product. Every failure that crosses a module
 * boundary is a HaError with a closed code, a message a person can act on,
 * the original error kept as `cause`, and whether retrying may help.
 */
export const ErrorCode = {
  InvalidArgument: "invalid_argument",
  NotFound: "not_found",
  FailedPrecondition: "failed_precondition",
  Aborted: "aborted",
  Unavailable: "unavailable",
  DeadlineExceeded: "deadline_exceeded",
  Unauthenticated: "unauthenticated",
  PermissionDenied: "permission_denied",
  StaleEpoch: "stale_epoch",
  Internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const retryableCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.Unavailable,
  ErrorCode.DeadlineExceeded,
  ErrorCode.Aborted,
]);

export class HaError extends Error {
  override readonly name = "HaError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Sent with the error as response metadata (gRPC trailers), e.g. where the active coordinator is. */
  readonly trailers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean; trailers?: Record<string, string> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options?.retryable ?? retryableCodes.has(code);
    this.trailers = options?.trailers;
  }
}

/** SQLSTATE raised by assert_epoch() for a stale fencing token. */
export const STALE_EPOCH_SQLSTATE = "AH001";

/** Node socket error codes that mean "the other side is not there (yet)". */
const unavailableErrnos = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * Turns anything thrown (pg errors with a SQLSTATE, socket errors, plain
 * errors) into a HaError. `context` prefixes the message, e.g. "lock database".
 */
export function toHaError(err: unknown, context?: string): HaError {
  if (err instanceof HaError) return err;
  const prefix = context ? `${context}: ` : "";
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const message = typeof e?.message === "string" && e.message !== "" ? e.message : String(err);
  const code = typeof e?.code === "string" ? e.code : undefined;
  if (code === STALE_EPOCH_SQLSTATE) return new HaError(ErrorCode.StaleEpoch, prefix + message, { cause: err });
  if (code !== undefined && unavailableErrnos.has(code)) {
    return new HaError(ErrorCode.Unavailable, `${prefix}${message}`, { cause: err });
  }
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return fromSqlState(code, prefix + message, err);
  if (/Connection terminated|connection timeout|timeout expired|Query read timeout|Client has encountered a connection error/i.test(message)) {
    return new HaError(ErrorCode.Unavailable, prefix + message, { cause: err });
  }
  return new HaError(ErrorCode.Internal, prefix + message, { cause: err });
}

function fromSqlState(state: string, message: string, cause: unknown): HaError {
  const klass = state.slice(0, 2);
  // 08: connection exception, 57: operator intervention (shutdown, terminated),
  // 53: insufficient resources, 25006: read-only transaction (a standby).
  if (klass === "08" || klass === "57" || klass === "53") {
    return new HaError(ErrorCode.Unavailable, message, { cause });
  }
  if (state === "25006") return new HaError(ErrorCode.FailedPrecondition, message, { cause, retryable: true });
  if (klass === "40") return new HaError(ErrorCode.Aborted, message, { cause });
  if (klass === "42" || klass === "22") return new HaError(ErrorCode.InvalidArgument, message, { cause });
  return new HaError(ErrorCode.Internal, message, { cause });
}

export function invalidArgument(message: string): HaError {
  return new HaError(ErrorCode.InvalidArgument, message);
}

export function failedPrecondition(message: string): HaError {
  return new HaError(ErrorCode.FailedPrecondition, message);
}

/** How every refused precondition of a failover or a recovery begins: the runbooks' 409 text. */
export const PRECONDITION_NOT_MET = "precondition not met: ";

/**
 * A FailedPrecondition refusal worded as the runbooks print it,
 * "precondition not met: not the leader; leader is cp-node-1"; other errors
 * pass unchanged, and a message already worded so is not prefixed twice.
 */
export function asPreconditionRefusal(err: unknown): unknown {
  if (!(err instanceof HaError) || err.code !== ErrorCode.FailedPrecondition || err.message.startsWith(PRECONDITION_NOT_MET)) return err;
  return new HaError(err.code, PRECONDITION_NOT_MET + err.message, { cause: err.cause ?? err, retryable: err.retryable });
}

export function unavailable(message: string, cause?: unknown): HaError {
  return new HaError(ErrorCode.Unavailable, message, { cause });
}

/** A one-line description of any thrown value, for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
