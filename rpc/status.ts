import { status as GrpcStatus } from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, HaError, toHaError } from "../core/errors.js";

/**
 * The one table between our error codes and the wire: gRPC status codes for
 * RPCs, HTTP status codes for the JSON endpoints (409 for a refused
 * precondition, as the runbooks promise), Connect codes for our clients.
 */
const table: Record<ErrorCode, { grpc: GrpcStatus; http: number; connect: Code }> = {
  [ErrorCode.InvalidArgument]: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, connect: Code.InvalidArgument },
  [ErrorCode.NotFound]: { grpc: GrpcStatus.NOT_FOUND, http: 404, connect: Code.NotFound },
  [ErrorCode.FailedPrecondition]: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, connect: Code.FailedPrecondition },
  [ErrorCode.Aborted]: { grpc: GrpcStatus.ABORTED, http: 409, connect: Code.Aborted },
  [ErrorCode.Unavailable]: { grpc: GrpcStatus.UNAVAILABLE, http: 503, connect: Code.Unavailable },
  [ErrorCode.DeadlineExceeded]: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504, connect: Code.DeadlineExceeded },
  [ErrorCode.Unauthenticated]: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, connect: Code.Unauthenticated },
  [ErrorCode.PermissionDenied]: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403, connect: Code.PermissionDenied },
  [ErrorCode.StaleEpoch]: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, connect: Code.FailedPrecondition },
  [ErrorCode.Internal]: { grpc: GrpcStatus.INTERNAL, http: 500, connect: Code.Internal },
};

export function grpcStatusOf(err: unknown): { code: GrpcStatus; details: string } {
  const e = toHaError(err);
  return { code: table[e.code].grpc, details: e.message };
}

export function httpStatusOf(err: unknown): number {
  return table[toHaError(err).code].http;
}

/** Turns an error a client received (ConnectError) back into a HaError. */
export function fromConnectError(err: unknown, context?: string): HaError {
  if (!(err instanceof ConnectError)) return toHaError(err, context);
  const entry = (Object.entries(table) as [ErrorCode, (typeof table)[ErrorCode]][]).find(
    ([code, row]) => row.connect === err.code && code !== ErrorCode.StaleEpoch,
  );
  const code = entry?.[0] ?? ErrorCode.Internal;
  const message = err.rawMessage || err.message;
  return new HaError(code, context ? `${context}: ${message}` : message, { cause: err });
}
